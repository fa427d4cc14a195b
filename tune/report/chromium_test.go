package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ragtune/ragtune/tune/hpo"
)

// browser starts headless Chromium (Debian's package) with a fresh profile
// and no background networking; the test skips when it is missing (and
// fails under RAGTUNE_REQUIRE_SHARED=1).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		msg := "headless Chromium not found (scripts/test-deps installs Debian's chromium)"
		if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("force-color-profile", "srgb"),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// Start the browser on this context, so that each page is a tab of it.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatal(err)
	}
	return bctx
}

// pageLog collects what the page did that a test must see: requests,
// console errors, uncaught exceptions, browser log errors (CSP violations).
type pageLog struct {
	mu       sync.Mutex
	requests []string
	errors   []string
}

func (l *pageLog) listen(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		l.requests = append(l.requests, e.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			l.errors = append(l.errors, "console.error: "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		l.errors = append(l.errors, fmt.Sprintf("exception at %d:%d: %s", d.LineNumber, d.ColumnNumber, text))
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelError {
			l.errors = append(l.errors, "log: "+e.Entry.Text)
		}
	}
}

// openPage loads a file in a new tab and waits for the report's script.
func openPage(t *testing.T, bctx context.Context, file string) (context.Context, *pageLog) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	l := &pageLog{}
	if err := chromedp.Listen(ctx, l.listen); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	defer tcancel()
	err := chromedp.Do(tctx, chromedp.Navigate("file://"+file))
	if err == nil {
		_, err = chromedp.Run(tctx, chromedp.Poll[bool]("window.ragtuneReport !== undefined && window.ragtuneReport.ready"))
	}
	if err != nil {
		t.Fatalf("%s: %v (page errors: %v)", file, err, l.errors)
	}
	return ctx, l
}

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

// The full report in headless Chromium: every figure drawn, no console
// error, no request beyond the file itself, a screenshot that is not blank,
// and probes planted in every kind of study text run none of their code.
func TestReportInChromium(t *testing.T) {
	bctx := browser(t)
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
	ctx, l := openPage(t, bctx, files[0])

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
	l.mu.Lock()
	defer l.mu.Unlock()
	if pwned {
		t.Error("a probe ran: window.__pwned is set")
	}
	if len(errs) > 0 || len(l.errors) > 0 {
		t.Errorf("page errors: %v %v", errs, l.errors)
	}
	for _, u := range l.requests {
		if u != "file://"+files[0] {
			t.Errorf("request to %s", u)
		}
	}
	if len(l.requests) == 0 {
		t.Error("no request seen at all: is the network listener working?")
	}

	// Seed files: each draws its one figure, with no error and no request.
	for file, fig := range SeedFiles {
		ctx, l := openPage(t, bctx, filepath.Join(dir, file))
		charts := evalJSON[[]chartState](t, ctx, chartCheck)
		if len(charts) != 1 || charts[0].ID != "chart-"+fig || !charts[0].Drawn {
			t.Errorf("%s: charts %+v", file, charts)
		}
		l.mu.Lock()
		if len(l.errors) > 0 || len(l.requests) != 1 {
			t.Errorf("%s: errors %v requests %v", file, l.errors, l.requests)
		}
		l.mu.Unlock()
	}
}

// A one-objective study (objective against its FLOPs attribute) with
// baselines, and an empty one, draw without errors.
func TestSmallStudiesInChromium(t *testing.T) {
	bctx := browser(t)
	for _, n := range []int{0, 1, 12} {
		dir := t.TempDir()
		url, _ := writeStudy(t, dir, "s", studySpec{n: n, baseline: true})
		files, _, err := newReport(t, loadStudy(t, url, "s")).WriteFiles(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		ctx, l := openPage(t, bctx, files[0])
		errs := evalJSON[[]string](t, ctx, `ragtuneReport.errors`)
		charts := evalJSON[[]chartState](t, ctx, chartCheck)
		l.mu.Lock()
		if len(errs) > 0 || len(l.errors) > 0 {
			t.Errorf("%d trials: page errors %v %v", n, errs, l.errors)
		}
		l.mu.Unlock()
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
