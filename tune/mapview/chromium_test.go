package mapview

import (
	"bytes"
	"encoding/json"
	"image/png"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ragtune/ragtune/retrieval/embmap"
	"github.com/ragtune/ragtune/tune/report/chromiumtest"
)

// TestPageInChromium opens viz.html from a file:// URL in headless
// Chromium (Debian's package): all four maps drawn, no request beyond the
// file, no console error, probes in texts and ids run nothing, clicking a
// query draws its links in every map, and the screenshot is not blank.
func TestPageInChromium(t *testing.T) {
	browser := chromiumtest.Browser(t, 1400, 1000)
	probe := `"><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"><!--`
	qs, qrels, docs := corpus(12, 80)
	qs[0].Text += probe
	docs[0].Text += probe
	v := Sample(qs, qrels, docs, 12, 80, 1)
	v.Title = "maps" + probe
	v.Notes = append(v.Notes, "note"+probe)
	vecs := clustered(len(v.Items))
	opts := Options{Methods: []string{PCA, UMAP}, UMAP: embmap.UMAPOptions{Epochs: 50, Seed: 1}}
	for _, model := range []string{"base", "tuned" + probe} {
		if err := v.Compute(model, vecs, opts); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "viz.html")
	if err := v.WriteHTML(file); err != nil {
		t.Fatal(err)
	}

	ctx, l := chromiumtest.Open(t, browser, file, "window.ragtuneViz !== undefined && window.ragtuneViz.ready")
	eval := func(js string, into any) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
		if err == nil {
			err = json.Unmarshal(v, into)
		}
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
	}
	var drawn, links []int
	var pwned bool
	var status, tip string
	eval(`Array.from(document.querySelectorAll('.chart')).map(e => {
		const c = e.querySelector('canvas'); const r = c ? c.getBoundingClientRect() : {width: 0};
		return r.width > 100 ? 1 : 0; })`, &drawn)
	eval(`ragtuneViz.pick(0); ragtuneViz.charts.map(c => c.getOption().series.find(s => s.id === 'links').data.length)`, &links)
	eval(`document.getElementById('status').textContent`, &status)
	eval(`ragtuneViz.hover(12, {clientX: 10, clientY: 10}); document.getElementById('tip').textContent`, &tip)
	eval(`window.__pwned !== undefined || document.querySelector('#maps img, #tip img, #status img, .notes img, h1 img') !== null`, &pwned)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(drawn) != 4 || drawn[0]+drawn[1]+drawn[2]+drawn[3] != 4 {
		t.Errorf("maps drawn: %v, want 4", drawn)
	}
	// Query 0 judges two documents: two lines in each of the four maps.
	if len(links) != 4 || links[0] != 2 || links[3] != 2 {
		t.Errorf("links drawn per map: %v, want 2 in each of 4", links)
	}
	if !strings.Contains(status, "q00") || !strings.Contains(status, "<script>") {
		t.Errorf("status %q: want the query's id and its text, as text", status)
	}
	if !strings.Contains(tip, "relevant document d000") || !strings.Contains(tip, "onerror") {
		t.Errorf("hover text %q: want the document's id and text", tip)
	}
	if pwned {
		t.Error("a probe ran or inserted markup")
	}
	if problems := l.Errors(); len(problems) > 0 {
		t.Errorf("page problems: %v", problems)
	}
	for _, u := range l.Requests() {
		if !strings.HasPrefix(u, "file://") {
			t.Errorf("network request to %s", u)
		}
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	first, varied := img.At(b.Min.X, b.Min.Y), false
	for y := b.Min.Y; y < b.Max.Y && !varied; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			if img.At(x, y) != first {
				varied = true
				break
			}
		}
	}
	if !varied {
		t.Error("blank screenshot")
	}
}
