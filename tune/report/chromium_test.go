package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ragtune/ragtune/tune/hpo"
	"github.com/ragtune/ragtune/tune/report/chromiumtest"
)

func evalJSON[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// chartCheck lists every chart container and whether ECharts drew into it.
const chartCheck = `Array.from(document.querySelectorAll('.chart')).map(e => {
  const c = e.querySelector('canvas, svg');
  const r = c ? c.getBoundingClientRect() : {width: 0, height: 0};
  return {id: e.id, drawn: !!c && r.width > 50 && r.height > 50};
})`

type chartState struct {
	ID    string `json:"id"`
	Drawn bool   `json:"drawn"`
}

// reportReady is true once the report's script has drawn the page.
const reportReady = "window.ragtuneReport !== undefined && window.ragtuneReport.ready"

// The full report in headless Chromium: every figure drawn, no console
// error, no request beyond the file itself, a screenshot that is not blank,
// and probes planted in every kind of study text run none of their code.
func TestReportInChromium(t *testing.T) {
	bctx := chromiumtest.Browser(t, 1280, 900)
	probe := `"><script>window.__pwned=1;console.error("probe ran")</script><img src=x onerror="window.__pwned=2;console.error('probe ran')"><!--`
	dir := t.TempDir()
	name := "study" + probe
	url, written := writeStudy(t, dir, name, studySpec{n: 40, multi: true, probe: probe})
	r := newReport(t, loadStudy(t, url, name))
	// A section from another package, with a probe in its chart data.
	sec := Section{ID: "extra", Title: "Extra" + probe, Body: "<p>contributed section</p>", Charts: []Chart{{Title: "pts", Option: map[string]any{
		"xAxis": map[string]any{}, "yAxis": map[string]any{},
		"series": []any{map[string]any{"type": "scatter", "name": probe, "data": []any{map[string]any{"name": probe, "value": []float64{1, 2}}}}},
	}}}}
	if err := r.Add(sec); err != nil {
		t.Fatal(err)
	}
	files, _, err := r.WriteFiles(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, l := chromiumtest.Open(t, bctx, files[0], reportReady)

	charts := evalJSON[[]chartState](t, ctx, chartCheck)
	want := []string{"chart-pareto", "chart-history", "chart-curves", "chart-importance-fanova", "chart-importance-mdi",
		"chart-interactions", "chart-parallel", "chart-valtest", "chart-sec-extra-0"}
	for i := range r.Data.Params {
		want = append(want, fmt.Sprintf("chart-slice-%d", i))
	}
	drawn := map[string]bool{}
	for _, c := range charts {
		drawn[c.ID] = c.Drawn
	}
	for _, id := range want {
		if !drawn[id] {
			t.Errorf("chart %s not drawn (charts: %+v)", id, charts)
		}
	}
	if n := evalJSON[int](t, ctx, `document.querySelectorAll('#trials-table tbody tr').length`); n != 40 {
		t.Errorf("trial table has %d rows, want 40", n)
	}

	// The default Pareto axes are the two objectives, so the drawn front is
	// the study's Pareto front.
	front := evalJSON[[]int](t, ctx, `ragtuneReport.charts['chart-pareto'].getOption().series[1].data.map(d => d[2])`)
	sort.Ints(front)
	if got, want := fmt.Sprint(front), trialNumbers(hpo.ParetoFront(written, []hpo.Direction{hpo.Maximize, hpo.Minimize})); got != want {
		t.Errorf("drawn Pareto front %s, study's %s", got, want)
	}

	// Tooltips: hovering shows the trial and its parameters as text; hover
	// every Pareto point, so the probed scheduler choice is shown too.
	tips := evalJSON[[]string](t, ctx, `(() => {
  const c = ragtuneReport.charts['chart-pareto'], out = [];
  c.getOption().series.forEach((s, si) => s.data.forEach((_, di) => {
    c.dispatchAction({type: 'showTip', seriesIndex: si, dataIndex: di});
    const tips = Array.from(document.querySelectorAll('#chart-pareto div')).filter(d => d.textContent.startsWith('Trial '));
    out.push(tips.length ? tips[tips.length - 1].textContent : '');
  }));
  return out;
})()`)
	shown := 0
	for _, tip := range tips {
		if !strings.Contains(tip, "Trial ") || !strings.Contains(tip, "scheduler") {
			t.Errorf("Pareto tooltip %q lacks the trial and its parameters", tip)
		}
		if strings.Contains(tip, "onerror=") {
			shown++
		}
	}
	if shown == 0 {
		t.Error("no tooltip showed the probe as text")
	}
	evalJSON[chromedp.Void](t, ctx, `ragtuneReport.charts['chart-sec-extra-0'].dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 0})`)

	// Sorting the table by the main objective, twice: descending.
	order := evalJSON[[]string](t, ctx, `(() => {
  const th = document.querySelectorAll('#trials-table th')[2];
  th.click(); th.click();
  return Array.from(document.querySelectorAll('#trials-table tbody tr')).slice(0, 3).map(r => r.children[2].textContent);
})()`)
	if len(order) != 3 || !(order[0] >= order[1] && order[1] >= order[2]) {
		t.Errorf("table sorted descending by ndcg@5 starts %v", order)
	}

	// SVG and PNG export of a chart (what the toolbox buttons save).
	svg := evalJSON[string](t, ctx, `ragtuneReport.svg('chart-history')`)
	if !strings.HasPrefix(svg, "<svg") || len(svg) < 2000 {
		t.Errorf("SVG export: %.100q", svg)
	}
	pngURL := evalJSON[string](t, ctx, `ragtuneReport.charts['chart-pareto'].getDataURL({type: 'png', pixelRatio: 2, backgroundColor: '#fff'})`)
	if !strings.HasPrefix(pngURL, "data:image/png;base64,") || len(pngURL) < 5000 {
		t.Errorf("PNG export: %.100q", pngURL)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colours := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>11<<10|g>>11<<5|bl>>11] = true
		}
	}
	if b.Dy() < 2000 || len(colours) < 50 {
		t.Errorf("screenshot %v with %d colours looks blank", b, len(colours))
	}

	pwned := evalJSON[bool](t, ctx, `window.__pwned !== undefined`)
	errs := evalJSON[[]string](t, ctx, `ragtuneReport.errors`)
	if pwned {
		t.Error("a probe ran: window.__pwned is set")
	}
	if len(errs) > 0 || len(l.Errors()) > 0 {
		t.Errorf("page errors: %v %v", errs, l.Errors())
	}
	for _, u := range l.Requests() {
		if u != "file://"+files[0] {
			t.Errorf("request to %s", u)
		}
	}
	if len(l.Requests()) == 0 {
		t.Error("no request seen at all: is the network listener working?")
	}

	// Seed files: each draws its one figure, with no error and no request.
	for file, fig := range SeedFiles {
		ctx, l := chromiumtest.Open(t, bctx, filepath.Join(dir, file), reportReady)
		charts := evalJSON[[]chartState](t, ctx, chartCheck)
		if len(charts) != 1 || charts[0].ID != "chart-"+fig || !charts[0].Drawn {
			t.Errorf("%s: charts %+v", file, charts)
		}
		if len(l.Errors()) > 0 || len(l.Requests()) != 1 {
			t.Errorf("%s: errors %v requests %v", file, l.Errors(), l.Requests())
		}
	}
}

// A one-objective study (objective against its FLOPs attribute) with
// baselines, and an empty one, draw without errors.
func TestSmallStudiesInChromium(t *testing.T) {
	bctx := chromiumtest.Browser(t, 1280, 900)
	for _, n := range []int{0, 1, 12} {
		dir := t.TempDir()
		url, _ := writeStudy(t, dir, "s", studySpec{n: n, baseline: true})
		files, _, err := newReport(t, loadStudy(t, url, "s")).WriteFiles(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		ctx, l := chromiumtest.Open(t, bctx, files[0], reportReady)
		errs := evalJSON[[]string](t, ctx, `ragtuneReport.errors`)
		charts := evalJSON[[]chartState](t, ctx, chartCheck)
		if len(errs) > 0 || len(l.Errors()) > 0 {
			t.Errorf("%d trials: page errors %v %v", n, errs, l.Errors())
		}
		if n == 12 {
			js, _ := json.Marshal(charts)
			for _, c := range charts {
				if !c.Drawn {
					t.Errorf("%d trials: chart %s not drawn: %s", n, c.ID, js)
				}
			}
		}
	}
}
