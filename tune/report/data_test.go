package report

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/tune/hpo"
	"github.com/ragtune/ragtune/tune/hpo/storage/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

func TestExtractMixedStates(t *testing.T) {
	url, written := writeStudy(t, t.TempDir(), "mixed", studySpec{n: 30, baseline: true})
	s := loadStudy(t, url, "mixed")
	d := newReport(t, s).Data
	if got := d.Counts; got["COMPLETE"] != 22 || got["PRUNED"] != 4 || got["FAIL"] != 3 || got["RUNNING"] != 1 {
		t.Fatalf("counts %v", got)
	}
	if len(d.Trials) != 30 || d.Metrics[0] != "ndcg@5" || d.Directions[0] != "maximize" {
		t.Fatalf("trials %d metrics %v directions %v", len(d.Trials), d.Metrics, d.Directions)
	}
	// The best trial is the complete one with the highest value.
	bestN, bestV := -1, math.Inf(-1)
	for _, w := range written {
		if w.State == hpo.Complete && w.Values[0] > bestV {
			bestN, bestV = w.Number, w.Values[0]
		}
	}
	if len(d.Best) != 1 || d.Best[0] != bestN {
		t.Fatalf("best %v, want [%d]", d.Best, bestN)
	}
	byNumber := map[int]TrialData{}
	for _, tr := range d.Trials {
		byNumber[tr.Number] = tr
	}
	pruned := byNumber[3]
	if pruned.State != "PRUNED" || len(pruned.Intermediate) != 2 || *pruned.Intermediate[0][0] != 0 || *pruned.Intermediate[1][0] != 1 {
		t.Fatalf("pruned trial: %+v", pruned)
	}
	failed := byNumber[5]
	if failed.State != "FAIL" || failed.FailReason != "diverged (loss NaN at step 3)" || len(failed.Values) != 0 {
		t.Fatalf("failed trial: %+v", failed)
	}
	if _, ok := failed.Attrs["fail_reason"]; ok {
		t.Fatal("fail_reason should be its own column, not an attribute")
	}
	if byNumber[0].Duration == nil || *byNumber[0].Duration != 10 || byNumber[29].Duration != nil {
		t.Fatalf("durations: %v, running %v", byNumber[0].Duration, byNumber[29].Duration)
	}
	if got := strings.Join(d.Attrs, ","); got != "train_flops,peak_rss_bytes,energy_kwh,note,test_ndcg@5" {
		t.Fatalf("attribute order %s", got)
	}
	if got := strings.Join(d.Numeric, ","); got != "train_flops,peak_rss_bytes,energy_kwh,test_ndcg@5" {
		t.Fatalf("numeric attributes %s", got)
	}
	if len(d.ValTest) != 1 || d.ValTest[0] != (ValTestPair{Val: "obj:0", Test: "attr:test_ndcg@5", Name: "ndcg@5"}) {
		t.Fatalf("validation/test pairs %+v", d.ValTest)
	}
	if d.ParetoX != "attr:train_flops" || d.ParetoY != "obj:0" {
		t.Fatalf("default Pareto axes %s, %s", d.ParetoX, d.ParetoY)
	}
	if len(d.Baselines) != 2 || d.Baselines[0].System != "base model" || d.Baselines[1] != (Baseline{"BM25", "ndcg@5", 0.9, "study"}) {
		t.Fatalf("baselines %+v", d.Baselines)
	}
	var names []string
	for _, p := range d.Params {
		names = append(names, p.Name+":"+p.Kind)
	}
	if got := strings.Join(names, ","); got != "batch:categorical,epochs:int,lr:float,rank:int,scheduler:categorical" || !d.Params[2].Log {
		t.Fatalf("params %s (lr log %v)", got, d.Params[2].Log)
	}

	im := d.Importance
	if im == nil || im.FanovaError != "" || im.MDIError != "" {
		t.Fatalf("importance %+v", im)
	}
	for name, list := range map[string][]NamedValue{"fanova": im.Fanova, "mdi": im.MDI} {
		sum := 0.0
		for _, v := range list {
			sum += v.Value
		}
		if len(list) != 5 || math.Abs(sum-1) > 1e-9 || list[0].Name != "lr" {
			t.Errorf("%s: %+v (sum %v); lr drives the objective", name, list, sum)
		}
	}
	m := im.Interactions.Matrix
	for i := range m {
		for j := range m {
			if m[i][j] != m[j][i] || m[i][j] < 0 || m[i][j] > 1 {
				t.Fatalf("interaction matrix not a symmetric share matrix: %v", m)
			}
		}
	}
}

// The same study read from PostgreSQL gives the same report data.
func TestExtractFromPostgres(t *testing.T) {
	pg := pgtest.URL(t)
	spec := studySpec{n: 30, baseline: true}
	writeStudyAt(t, pg, "mixed", spec)
	lite, _ := writeStudy(t, t.TempDir(), "mixed", spec)
	a := newReport(t, loadStudy(t, pg, "mixed")).Data
	b := newReport(t, loadStudy(t, lite, "mixed")).Data
	ja, jb := jsonString(t, a), jsonString(t, b)
	if ja != jb {
		t.Fatalf("PostgreSQL and SQLite give different data:\n%.2000s\n%.2000s", ja, jb)
	}
}

func TestExtractMultiObjective(t *testing.T) {
	url, written := writeStudy(t, t.TempDir(), "multi", studySpec{n: 40, multi: true})
	s := loadStudy(t, url, "multi")
	d := newReport(t, s).Data
	want := hpo.ParetoFront(written, []hpo.Direction{hpo.Maximize, hpo.Minimize})
	if len(want) < 2 || trialNumbers(want) != jsonString(t, d.Best) {
		t.Fatalf("best %v, Pareto front %s", d.Best, trialNumbers(want))
	}
	if d.ParetoX != "obj:1" || d.ParetoY != "obj:0" {
		t.Fatalf("default Pareto axes %s, %s", d.ParetoX, d.ParetoY)
	}
	lines := strings.Join(HeaderLines(d), "\n")
	for _, w := range []string{"40 trials: ", "Objectives: maximize ndcg@5, minimize train_flops.", "Pareto front: "} {
		if !strings.Contains(lines, w) {
			t.Errorf("header lacks %q:\n%s", w, lines)
		}
	}
}

func jsonString(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), ",", " ")
}

func TestHeaderSaysWhatTheStudyFound(t *testing.T) {
	url, _ := writeStudy(t, t.TempDir(), "h", studySpec{n: 30, baseline: true})
	d := newReport(t, loadStudy(t, url, "h")).Data
	lines := HeaderLines(d)
	text := strings.Join(lines, "\n")
	for _, w := range []string{
		"30 trials: 22 completed, 4 pruned, 3 failed, 1 running.",
		"Objective: maximize ndcg@5.",
		"Best trial: #",
		", test ndcg@5 = ",
		"Base model (recorded by the study): ndcg@5 = 0.3. The best trial beats it on ndcg@5 by",
		"BM25 (recorded by the study): ndcg@5 = 0.9. The best trial is",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("header lacks %q:\n%s", w, text)
		}
	}
}

// The page's data cannot close its <script> element or open a comment,
// whatever the study holds, and the page is one file with no reference to
// anything outside it.
func TestPageKeepsDataInsideItsScript(t *testing.T) {
	probe := `</script><script>window.__pwned=1</script><!--<img src=x onerror=alert(1)>`
	url, _ := writeStudy(t, t.TempDir(), "probe"+probe, studySpec{n: 12, probe: probe})
	r := newReport(t, loadStudy(t, url, "probe"+probe))
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if n := strings.Count(strings.ToLower(page), "</script"); n != 3 {
		t.Errorf("%d </script in the page; want the 3 the page itself closes", n)
	}
	for _, bad := range []string{"<!--", "window.__pwned=1</script>", "<img src=x"} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
	start := strings.Index(page, `<script type="application/json" id="ragtune-data">`)
	end := strings.Index(page[start:], "</script>")
	var back Data
	if err := json.Unmarshal([]byte(page[start+len(`<script type="application/json" id="ragtune-data">`):start+end]), &back); err != nil {
		t.Fatal(err)
	}
	if back.Study != "probe"+probe || back.Trials[0].Attrs[probe] != probe {
		t.Fatalf("data does not round-trip: study %q", back.Study)
	}
	// Tags that load anything: a src, a link other than to an anchor, CSS imports.
	external := regexp.MustCompile(`(?i)<[a-z][^>]*\s(src\s*=|href\s*=\s*"[^#])|url\(|@import|<link|<iframe|<object`)
	if m := external.FindString(page[:start]); m != "" {
		t.Errorf("page markup refers outside itself: %q", m)
	}
}

func TestSections(t *testing.T) {
	url, _ := writeStudy(t, t.TempDir(), "s", studySpec{n: 10})
	r := newReport(t, loadStudy(t, url, "s"))
	if err := r.Add(Section{ID: "bad id"}); err == nil {
		t.Error("a section id with a space was accepted")
	}
	if err := r.Add(Section{ID: "x", Charts: []Chart{{Option: []int{1}}}}); err == nil {
		t.Error("a chart option that is not an object was accepted")
	}
	sec := Section{ID: "maps", Title: "Embedding maps", Body: "<p>PCA of the corpus</p>",
		Charts: []Chart{{Title: "pca", Option: map[string]any{"xAxis": map[string]any{}, "yAxis": map[string]any{}, "series": []any{map[string]any{"type": "scatter", "data": [][]float64{{1, 2}, {2, 3}}}}}}}}
	if err := r.Add(sec); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(sec); err == nil {
		t.Error("the same section id was accepted twice")
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`<section id="maps">`, `<a href="#maps">Embedding maps</a>`, "<p>PCA of the corpus</p>", `id="chart-sec-maps-0"`, `"elem":"chart-sec-maps-0"`} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("page lacks %s", w)
		}
	}
}

func TestWriteFilesWithSeedFiles(t *testing.T) {
	url, _ := writeStudy(t, t.TempDir(), "seed", studySpec{n: 25})
	r := newReport(t, loadStudy(t, url, "seed"))
	dir := t.TempDir()
	files, skipped, err := r.WriteFiles(dir, true)
	if err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	if len(files) != 7 || files[0] != filepath.Join(dir, "report.html") {
		t.Fatalf("files %v", files)
	}
	for name, fig := range SeedFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `id="chart-`+fig+`"`) || strings.Contains(string(b), `id="trials-table"`) {
			t.Errorf("%s should hold the %s figure alone", name, fig)
		}
	}
	f, err := os.Open(filepath.Join(dir, HeatmapFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colours := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, bl, a}] = true
		}
	}
	if b.Dx() < 300 || b.Dy() < 300 || len(colours) < 20 {
		t.Fatalf("heatmap %v with %d colours", b, len(colours))
	}

	// Too few trials for fANOVA: the report is written, the heatmap is not.
	url2, _ := writeStudy(t, t.TempDir(), "tiny", studySpec{n: 1})
	r2 := newReport(t, loadStudy(t, url2, "tiny"))
	files, skipped, err = r2.WriteFiles(t.TempDir(), true)
	if err != nil || len(files) != 6 || len(skipped) != 1 || !strings.Contains(skipped[0], "need at least 2") {
		t.Fatalf("tiny study: files %v skipped %v err %v", files, skipped, err)
	}
}

// Baselines recorded with a trial are one line per system, the base model
// fused with BM25 (hybrid_ scores) apart from the base model alone.
func TestBaselineLinesGroupBySystem(t *testing.T) {
	v := 0.5
	d := &Data{Metrics: []string{"ndcg@5"}, Directions: []string{"maximize"}, Best: []int{3},
		Baselines: []Baseline{
			{System: "base model", Metric: "ndcg@5", Value: 0.4, Source: "trial 0"},
			{System: "base model", Metric: "ndcg@10", Value: 0.45, Source: "trial 0"},
			{System: "base model", Metric: "hybrid_ndcg@5", Value: 0.8, Source: "trial 0"},
			{System: "base model", Metric: "hybrid_ndcg@10", Value: 0.85, Source: "trial 0"},
		}}
	got := baselineLines(d, map[int]*TrialData{3: {Number: 3, Values: []*float64{&v}}})
	want := []string{
		"Base model (recorded with trial 0): ndcg@5 = 0.4, ndcg@10 = 0.45. The best trial beats it on ndcg@5 by 0.1.",
		"Base model + BM25 (hybrid) (recorded with trial 0): ndcg@5 = 0.8, ndcg@10 = 0.85.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
