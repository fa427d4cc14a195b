package storage

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ragtune/ragtune/tune/hpo"
	"github.com/ragtune/ragtune/tune/hpo/storage/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

var ctx = context.Background()

func sqliteURL(t testing.TB) string {
	return "sqlite:///" + filepath.Join(t.TempDir(), "study.db")
}

func openT(t testing.TB, url string) *Storage {
	t.Helper()
	s, err := Open(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	xDist   = hpo.FloatDistribution{Low: -10, High: 10}
	lrDist  = hpo.FloatDistribution{Low: 1e-5, High: 0.1, Log: true}
	nDist   = hpo.IntDistribution{Low: 1, High: 9, Step: 2}
	optDist = hpo.CategoricalDistribution{Choices: []any{"adam", "sgd", nil, int64(3), 2.5, true}}
)

// sampleTrials covers every state, every distribution kind, infinite values
// and NaN intermediate values.
func sampleTrials() []hpo.FrozenTrial {
	dists := map[string]hpo.Distribution{"x": xDist, "lr": lrDist, "n": nDist, "opt": optDist}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.Local)
	var out []hpo.FrozenTrial
	for i := 0; i < 7; i++ {
		t := hpo.FrozenTrial{
			InternalParams: map[string]float64{"x": float64(i) - 3.5, "lr": 1e-4 * float64(i+1), "n": float64(1 + 2*(i%5)), "opt": float64(i % 6)},
			Distributions:  dists,
			Start:          t0.Add(time.Duration(i) * time.Minute),
			End:            t0.Add(time.Duration(i)*time.Minute + 30*time.Second),
			UserAttrs:      map[string]any{"note": "trial", "flops": 1.5e15},
			SystemAttrs:    map[string]any{},
		}
		switch i {
		case 0, 1, 2:
			t.State = hpo.Complete
			t.Values = []float64{float64(i) * 0.25}
			t.Intermediate = map[int]float64{0: 0.1, 1: float64(i) * 0.2}
		case 3:
			t.State = hpo.Pruned
			t.Values = []float64{0.05}
			t.Intermediate = map[int]float64{0: 0.05, 1: math.NaN()}
		case 4:
			t.State = hpo.Fail
			t.UserAttrs["fail_reason"] = "exit status 3"
		case 5:
			t.State = hpo.Complete
			t.Values = []float64{math.Inf(-1)}
		case 6:
			t.State = hpo.Waiting
			t.SystemAttrs["fixed_params"] = map[string]any{"x": 1.5}
			t.Start, t.End = time.Time{}, time.Time{}
		}
		out = append(out, t)
	}
	return out
}

func TestRoundTripSQLite(t *testing.T) { testRoundTrip(t, sqliteURL(t)) }

func TestRoundTripPostgres(t *testing.T) { testRoundTrip(t, pgtest.URL(t)) }

func testRoundTrip(t *testing.T, url string) {
	s := openT(t, url)
	st, err := s.CreateStudy(ctx, "rt", []hpo.Direction{hpo.Maximize})
	if err != nil {
		t.Fatal(err)
	}
	want := sampleTrials()
	if err := s.AddTrials(ctx, st.ID, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadTrials(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("loaded %d trials, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Number != i || g.State != w.State {
			t.Errorf("trial %d: number %d state %v, want %d %v", i, g.Number, g.State, i, w.State)
		}
		if !reflect.DeepEqual(g.InternalParams, w.InternalParams) {
			t.Errorf("trial %d params %v, want %v", i, g.InternalParams, w.InternalParams)
		}
		if fmtFloats(g.Values) != fmtFloats(w.Values) {
			t.Errorf("trial %d values %v, want %v", i, g.Values, w.Values)
		}
		if len(g.Intermediate) != len(w.Intermediate) {
			t.Errorf("trial %d intermediate %v, want %v", i, g.Intermediate, w.Intermediate)
		}
		if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) {
			t.Errorf("trial %d times %v %v, want %v %v", i, g.Start, g.End, w.Start, w.End)
		}
		if g.UserAttrs["note"] != "trial" {
			t.Errorf("trial %d user attrs %v", i, g.UserAttrs)
		}
	}
	if got[0].Params["opt"] != "adam" || got[3].Params["opt"] != int64(3) || got[0].Params["n"] != int64(1) {
		t.Errorf("external params wrong: %v %v", got[0].Params, got[3].Params)
	}
	if !math.IsNaN(got[3].Intermediate[1]) {
		t.Errorf("NaN intermediate came back as %v", got[3].Intermediate[1])
	}
	// Reopening an existing database keeps it and its study.
	s2 := openT(t, url)
	if _, err := s2.CreateStudy(ctx, "rt", []hpo.Direction{hpo.Maximize}); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.CreateStudy(ctx, "rt", []hpo.Direction{hpo.Minimize}); err == nil {
		t.Error("reopening a study with other directions was accepted")
	}
}

func fmtFloats(v []float64) string { b, _ := json.Marshal(fmtAll(v)); return string(b) }
func fmtAll(v []float64) []string {
	out := make([]string, len(v))
	for i, f := range v {
		out[i] = floatJSON(f)
	}
	return out
}

func TestTrialLifecycle(t *testing.T) {
	s := openT(t, sqliteURL(t))
	st, _ := s.CreateStudy(ctx, "life", []hpo.Direction{hpo.Minimize})
	id, num, err := s.CreateTrial(ctx, st.ID)
	if err != nil || num != 0 {
		t.Fatalf("CreateTrial: %d %v", num, err)
	}
	if err := s.SetParams(ctx, id, map[string]float64{"x": 1}, map[string]hpo.Distribution{"x": xDist}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReportIntermediate(ctx, id, 0, 2.5); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, id); err != nil {
		t.Fatal(err)
	}
	run, err := s.RunningTrials(ctx, st.ID)
	if err != nil || len(run) != 1 || run[0].HeartbeatAge < 0 || run[0].HeartbeatAge > time.Minute {
		t.Fatalf("RunningTrials = %+v, %v", run, err)
	}
	if err := s.Finish(ctx, id, hpo.Complete, []float64{0.5}); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, id, hpo.Fail, nil); err == nil || !strings.Contains(err.Error(), "already finished") {
		t.Errorf("second Finish: %v", err)
	}
	if err := s.ReportIntermediate(ctx, id, 1, 1); err == nil {
		t.Error("report on a finished trial accepted")
	}
	// A later trial may not change the param's distribution kind.
	id2, num2, _ := s.CreateTrial(ctx, st.ID)
	if num2 != 1 {
		t.Errorf("second trial number %d", num2)
	}
	if err := s.SetParams(ctx, id2, map[string]float64{"x": 1}, map[string]hpo.Distribution{"x": nDist}); err == nil {
		t.Error("incompatible distribution accepted")
	}
	if err := s.SetParams(ctx, id2, map[string]float64{"x": 15}, map[string]hpo.Distribution{"x": hpo.FloatDistribution{Low: 0, High: 20}}); err != nil {
		t.Errorf("dynamic range refused: %v", err)
	}
	// WAITING trials are claimed once.
	wid, wnum, err := s.AddTrial(ctx, st.ID, hpo.FrozenTrial{State: hpo.Waiting})
	if err != nil || wnum != 2 {
		t.Fatalf("AddTrial waiting: %d %v", wnum, err)
	}
	cid, cnum, ok, err := s.ClaimWaiting(ctx, st.ID)
	if err != nil || !ok || cid != wid || cnum != 2 {
		t.Fatalf("ClaimWaiting = %d %d %v %v", cid, cnum, ok, err)
	}
	if _, _, ok, _ := s.ClaimWaiting(ctx, st.ID); ok {
		t.Error("claimed the same WAITING trial twice")
	}
}

func TestOpenErrors(t *testing.T) {
	for _, u := range []string{"study.db", "mysql://x/y", "sqlite://", "sqlite:///"} {
		if _, err := Open(u, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
	dir := t.TempDir()
	url := "sqlite:///" + filepath.Join(dir, "s.db")
	s := openT(t, url)
	s.DB().Exec("UPDATE alembic_version SET version_num = 'v9.9.9.z'")
	s.Close()
	if _, err := Open(url, Options{}); err == nil || !strings.Contains(err.Error(), "v9.9.9.z") {
		t.Errorf("unknown revision: %v", err)
	}
}

func TestSchema32Stamp(t *testing.T) {
	url := sqliteURL(t)
	s, err := Open(url, Options{Schema: Schema32})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rev, _ := s.Revision(ctx); rev != revision32 {
		t.Errorf("revision %q", rev)
	}
	var n int
	s.DB().QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'ix_trials_study_id'").Scan(&n)
	if n != 1 {
		t.Error("3.2 index missing")
	}
}

func TestDecodeJSONPythonTokens(t *testing.T) {
	v, err := DecodeJSON(`{"a": [1, 2.5, NaN, Infinity, -Infinity, null, true, "s\"x"], "b": {}}`)
	if err != nil {
		t.Fatal(err)
	}
	a := v.(map[string]any)["a"].([]any)
	if a[0] != int64(1) || a[1] != 2.5 || !math.IsNaN(a[2].(float64)) || !math.IsInf(a[3].(float64), 1) || a[7] != `s"x` {
		t.Errorf("decoded %#v", a)
	}
	js, _ := EncodeJSON(map[string]any{"k": []any{1.0, math.NaN(), "x"}, "a": int64(2)})
	if js != `{"a": 2, "k": [1.0, NaN, "x"]}` {
		t.Errorf("EncodeJSON = %s", js)
	}
	for _, bad := range []string{"", "{", `{"a" 1}`, "[1,", "nan", `"x`} {
		if _, err := DecodeJSON(bad); err == nil {
			t.Errorf("DecodeJSON(%q) succeeded", bad)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add(`{"a": [1, 2.5, NaN, -Infinity, null, "x"]}`)
	f.Add(`[{"b": {"c": []}}]`)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := DecodeJSON(s)
		if err != nil {
			return
		}
		js, err := EncodeJSON(v)
		if err != nil {
			t.Fatalf("re-encode of %q: %v", s, err)
		}
		if _, err := DecodeJSON(js); err != nil {
			t.Fatalf("re-decode of %q: %v", js, err)
		}
	})
}

// ---- Optuna 3.1 interoperability (Debian's python3-optuna via /usr/bin/python3) ----

func python(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import optuna").Run(); err != nil {
		pgtest.SkipOrFail(t, "Optuna not importable by %s (scripts/test-deps installs python3-optuna)", py)
	}
	return py
}

func runPython(t *testing.T, py, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return out
}

// dumpScript prints a study as JSON the way Optuna sees it.
const dumpScript = `
import json, math, sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
def enc(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return repr(v)
    return v
s = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])
out = []
for t in s.get_trials(deepcopy=False):
    out.append({"number": t.number, "state": t.state.name,
        "params": {k: enc(v) for k, v in t.params.items()},
        "values": [enc(v) for v in t.values] if t.values is not None else None,
        "intermediate": {str(k): enc(v) for k, v in t.intermediate_values.items()},
        "user_attrs": {k: enc(v) for k, v in t.user_attrs.items()},
        "system_attrs": t.system_attrs,
        "dists": {k: optuna.distributions.distribution_to_json(d) for k, d in t.distributions.items()},
        "start": t.datetime_start.strftime("%Y-%m-%d %H:%M:%S.%f") if t.datetime_start else None})
print(json.dumps({"directions": [d.name for d in s.directions], "trials": out}))
`

type pyTrial struct {
	Number       int
	State        string
	Params       map[string]any
	Values       []any
	Intermediate map[string]any
	UserAttrs    map[string]any `json:"user_attrs"`
	SystemAttrs  map[string]any `json:"system_attrs"`
	Dists        map[string]string
	Start        *string
}

type pyStudy struct {
	Directions []string
	Trials     []pyTrial
}

func pyValue(v float64) any {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return v
}

// Optuna loads a ragtune-written study and sees the same trials.
func TestOptunaReadsRagtuneStudy(t *testing.T) {
	py := python(t)
	url := sqliteURL(t)
	s := openT(t, url)
	st, err := s.CreateStudy(ctx, "from-go", []hpo.Direction{hpo.Maximize})
	if err != nil {
		t.Fatal(err)
	}
	want := sampleTrials()
	if err := s.AddTrials(ctx, st.ID, want); err != nil {
		t.Fatal(err)
	}
	goTrials, err := s.LoadTrials(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got pyStudy
	if err := json.Unmarshal(runPython(t, py, dumpScript, url, "from-go"), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Directions, []string{"MAXIMIZE"}) || len(got.Trials) != len(goTrials) {
		t.Fatalf("Optuna sees directions %v and %d trials, want MAXIMIZE and %d", got.Directions, len(got.Trials), len(goTrials))
	}
	for i, g := range goTrials {
		p := got.Trials[i]
		if p.Number != g.Number || p.State != g.State.String() {
			t.Errorf("trial %d: Optuna sees #%d %s, ragtune #%d %s", i, p.Number, p.State, g.Number, g.State)
		}
		for name, v := range g.Params {
			pv := p.Params[name]
			if f, ok := pv.(float64); ok {
				if gi, ok := v.(int64); ok {
					v = float64(gi)
				}
				if f != v {
					t.Errorf("trial %d param %s: Optuna %v, ragtune %v", i, name, pv, v)
				}
			} else if pv != v {
				t.Errorf("trial %d param %s: Optuna %#v, ragtune %#v", i, name, pv, v)
			}
			if d := g.Distributions[name]; !jsonEqual(t, p.Dists[name], d.JSON()) {
				t.Errorf("trial %d dist %s: Optuna %s, ragtune %s", i, name, p.Dists[name], d.JSON())
			}
		}
		if len(p.Params) != len(g.Params) {
			t.Errorf("trial %d: Optuna params %v, ragtune %v", i, p.Params, g.Params)
		}
		var wantValues []any
		for _, v := range g.Values {
			wantValues = append(wantValues, pyValue(v))
		}
		if fmtAny(p.Values) != fmtAny(wantValues) {
			t.Errorf("trial %d values: Optuna %v, ragtune %v", i, p.Values, wantValues)
		}
		wantInter := map[string]any{}
		for k, v := range g.Intermediate {
			wantInter[itoa(k)] = pyValue(v)
		}
		if fmtAny(p.Intermediate) != fmtAny(wantInter) {
			t.Errorf("trial %d intermediate: Optuna %v, ragtune %v", i, p.Intermediate, wantInter)
		}
		if fmtAny(p.UserAttrs) != fmtAny(g.UserAttrs) || fmtAny(p.SystemAttrs) != fmtAny(g.SystemAttrs) {
			t.Errorf("trial %d attrs: Optuna %v %v, ragtune %v %v", i, p.UserAttrs, p.SystemAttrs, g.UserAttrs, g.SystemAttrs)
		}
		if (p.Start == nil) != g.Start.IsZero() || (p.Start != nil && *p.Start != g.Start.Format(timeLayout)) {
			t.Errorf("trial %d start: Optuna %v, ragtune %v", i, p.Start, g.Start)
		}
	}
	// Optuna can continue the study: numbering goes on after ours, and its
	// best trial works on what we wrote.
	out := runPython(t, py, `
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
s = optuna.load_study(study_name="from-go", storage=sys.argv[1])
s.optimize(lambda tr: tr.suggest_float("x", -10, 10), n_trials=2)
print(s.trials[-1].number, s.best_trial.number)
`, url)
	// Optuna first claims our WAITING trial 6, then creates trial 7.
	if f := strings.Fields(string(out)); len(f) != 2 || f[0] != itoa(len(want)) {
		t.Errorf("Optuna continued with %q; want last number %d", out, len(want))
	}
	after, _ := s.LoadTrials(ctx, st.ID)
	if len(after) != len(want)+1 || after[6].State != hpo.Complete || after[6].Params["x"] != 2.5 { // stored params win over fixed_params
		t.Errorf("ragtune sees %d trials after Optuna's (trial 6: %+v), want %d", len(after), after[6], len(want)+1)
	}
}

// The tables ragtune creates are Optuna 3.1's, statement for statement.
func TestSchemaMatchesOptuna(t *testing.T) {
	py := python(t)
	ours := openT(t, sqliteURL(t))
	theirs := filepath.Join(t.TempDir(), "optuna.db")
	runPython(t, py, `
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
optuna.storages.RDBStorage(sys.argv[1])
`, "sqlite:///"+theirs)
	schema := func(t *testing.T, s *Storage) []string {
		rows, err := s.DB().Query("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var typ, name, sql string
			rows.Scan(&typ, &name, &sql)
			out = append(out, typ+" "+name+": "+sql)
		}
		return out
	}
	other := openT(t, "sqlite:///"+theirs)
	a, b := schema(t, ours), schema(t, other)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("schema differs from Optuna's:\nours:\n%s\noptuna:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	var v1, v2 string
	ours.DB().QueryRow("SELECT schema_version || ' ' || (SELECT version_num FROM alembic_version) FROM version_info").Scan(&v1)
	other.DB().QueryRow("SELECT schema_version || ' ' || (SELECT version_num FROM alembic_version) FROM version_info").Scan(&v2)
	if v1 != v2 {
		t.Errorf("version rows: ours %q, Optuna %q", v1, v2)
	}
}

// ragtune continues a study Optuna wrote.
func TestRagtuneContinuesOptunaStudy(t *testing.T) {
	py := python(t)
	url := sqliteURL(t)
	runPython(t, py, `
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
s = optuna.create_study(study_name="from-py", storage=sys.argv[1], direction="minimize")
def f(tr):
    x = tr.suggest_float("x", -5, 5)
    lr = tr.suggest_float("lr", 1e-5, 1e-1, log=True)
    n = tr.suggest_int("n", 1, 9, step=2)
    o = tr.suggest_categorical("o", ["a", "b", None, 3])
    tr.set_user_attr("note", "py")
    for step in range(3):
        tr.report(x * x + step, step)
    if tr.number == 2:
        raise optuna.TrialPruned()
    if tr.number == 3:
        raise RuntimeError("boom")
    return x * x + n
s.optimize(f, n_trials=5, catch=(RuntimeError,))
s.enqueue_trial({"x": 1.25})
`, url)
	s := openT(t, url)
	st, err := s.LoadStudy(ctx, "from-py")
	if err != nil {
		t.Fatal(err)
	}
	trials, err := s.LoadTrials(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	states := []string{}
	for _, tr := range trials {
		states = append(states, tr.State.String())
	}
	if strings.Join(states, ",") != "COMPLETE,COMPLETE,PRUNED,FAIL,COMPLETE,WAITING" {
		t.Fatalf("states %v", states)
	}
	if len(trials[0].Intermediate) != 3 || trials[0].UserAttrs["note"] != "py" || len(trials[0].Params) != 4 {
		t.Errorf("trial 0 = %+v", trials[0])
	}
	if fp, _ := trials[5].SystemAttrs["fixed_params"].(map[string]any); fp["x"] != 1.25 {
		t.Errorf("fixed_params = %v", trials[5].SystemAttrs)
	}
	// Continue: claim Optuna's enqueued trial, then a fresh one.
	id, num, ok, err := s.ClaimWaiting(ctx, st.ID)
	if err != nil || !ok || num != 5 {
		t.Fatalf("claim = %d %v %v", num, ok, err)
	}
	dists := trials[0].Distributions
	params := map[string]float64{"x": 1.25, "lr": 0.001, "n": 3, "o": 1}
	if err := s.SetParams(ctx, id, params, dists); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, id, hpo.Complete, []float64{4.5625}); err != nil {
		t.Fatal(err)
	}
	id, num, err = s.CreateTrial(ctx, st.ID)
	if err != nil || num != 6 {
		t.Fatalf("new trial %d %v", num, err)
	}
	s.SetParams(ctx, id, map[string]float64{"x": 0, "lr": 0.01, "n": 1, "o": 2}, dists)
	s.ReportIntermediate(ctx, id, 0, 1)
	if err := s.Finish(ctx, id, hpo.Complete, []float64{1}); err != nil {
		t.Fatal(err)
	}
	var got pyStudy
	if err := json.Unmarshal(runPython(t, py, dumpScript, url, "from-py"), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Trials) != 7 || got.Trials[6].State != "COMPLETE" || got.Trials[6].Params["o"] != nil || got.Trials[5].Params["x"] != 1.25 {
		t.Errorf("Optuna sees %+v", got.Trials[5:])
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func fmtAny(v any) string {
	norm := normalize(v)
	b, _ := json.Marshal(norm)
	return string(b)
}

// normalize makes Go's int64 and Python's JSON numbers compare alike.
func normalize(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return pyValue(x)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case []float64:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := map[string]any{}
		for _, k := range keys {
			out[k] = normalize(x[k])
		}
		return out
	}
	return v
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestTrialCache(t *testing.T) {
	s := openT(t, sqliteURL(t))
	st, _ := s.CreateStudy(ctx, "cache", []hpo.Direction{hpo.Maximize})
	if err := s.AddTrials(ctx, st.ID, sampleTrials()); err != nil {
		t.Fatal(err)
	}
	id, _, _ := s.CreateTrial(ctx, st.ID)
	c := NewTrialCache(st.ID)
	first, err := c.Load(ctx, s)
	if err != nil || len(first) != 8 {
		t.Fatalf("%d trials, %v", len(first), err)
	}
	// Changes to unfinished trials and new trials show; finished ones come from the cache.
	s.ReportIntermediate(ctx, id, 0, 0.5)
	s.Finish(ctx, id, hpo.Complete, []float64{0.7})
	s.CreateTrial(ctx, st.ID)
	again, err := c.Load(ctx, s)
	if err != nil || len(again) != 9 {
		t.Fatalf("%d trials, %v", len(again), err)
	}
	full, _ := s.LoadTrials(ctx, st.ID)
	for i := range full {
		if fmtAny(trialView(again[i])) != fmtAny(trialView(full[i])) {
			t.Errorf("trial %d: cached %+v, fresh %+v", i, again[i], full[i])
		}
	}
	if again[7].State != hpo.Complete || again[7].Intermediate[0] != 0.5 {
		t.Errorf("trial 7 = %+v", again[7])
	}
}

func trialView(t hpo.FrozenTrial) map[string]any {
	inter := map[string]any{}
	for k, v := range t.Intermediate {
		inter[itoa(k)] = v
	}
	return map[string]any{"n": int64(t.Number), "s": t.State.String(), "v": t.Values, "p": t.Params, "i": inter, "u": t.UserAttrs, "y": t.SystemAttrs}
}

// A database stamped for Optuna ≥ 3.2 is refused by Optuna 3.1 with its
// "update optuna" error, as a real 3.2 database would be; ragtune reads both.
func TestSchema32RefusedByOptuna31(t *testing.T) {
	py := python(t)
	url := sqliteURL(t)
	s, err := Open(url, Options{Schema: Schema32})
	if err != nil {
		t.Fatal(err)
	}
	s.CreateStudy(ctx, "new", []hpo.Direction{hpo.Minimize})
	s.Close()
	cmd := exec.Command(py, "-c", `
import sys, optuna
try:
    optuna.load_study(study_name="new", storage=sys.argv[1])
    print("loaded")
except RuntimeError as e:
    print("refused:", e)
`, url)
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "refused:") {
		t.Errorf("Optuna 3.1 on a 3.2 database: %s %v", out, err)
	}
	s2 := openT(t, url)
	if _, err := s2.LoadStudy(ctx, "new"); err != nil {
		t.Error(err)
	}
}

func TestConcurrentCreateStudySQLite(t *testing.T) { testConcurrentCreateStudy(t, sqliteURL(t)) }

func TestConcurrentCreateStudyPostgres(t *testing.T) { testConcurrentCreateStudy(t, pgtest.URL(t)) }

// Workers started together each open the storage (creating the schema) and
// the study; all must succeed and agree on one study.
func testConcurrentCreateStudy(t *testing.T, url string) {
	const n = 4
	ids := make(chan int64, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			s, err := Open(url, Options{})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			st, err := s.CreateStudy(ctx, "together", []hpo.Direction{hpo.Maximize})
			if err != nil {
				errs <- err
				return
			}
			ids <- st.ID
		}()
	}
	seen := map[int64]bool{}
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			t.Error(err)
		case id := <-ids:
			seen[id] = true
		}
	}
	if len(seen) > 1 {
		t.Errorf("workers created %d studies", len(seen))
	}
}

// A two-objective ragtune study gives Optuna the same Pareto front.
func TestOptunaReadsMultiObjective(t *testing.T) {
	py := python(t)
	url := sqliteURL(t)
	s := openT(t, url)
	st, err := s.CreateStudy(ctx, "mo", []hpo.Direction{hpo.Maximize, hpo.Minimize})
	if err != nil {
		t.Fatal(err)
	}
	d := map[string]hpo.Distribution{"x": xDist}
	for i, v := range [][]float64{{0.5, 10}, {0.6, 20}, {0.4, 30}, {0.7, 5}, {0.7, 5}} {
		if _, _, err := s.AddTrial(ctx, st.ID, hpo.FrozenTrial{State: hpo.Complete, Values: v,
			InternalParams: map[string]float64{"x": float64(i)}, Distributions: d}); err != nil {
			t.Fatal(err)
		}
	}
	out := runPython(t, py, `
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
s = optuna.load_study(study_name="mo", storage=sys.argv[1])
print(" ".join(str(t.number) for t in s.best_trials), [d.name for d in s.directions])
`, url)
	if got := strings.TrimSpace(string(out)); got != "3 4 ['MAXIMIZE', 'MINIMIZE']" {
		t.Errorf("Optuna's Pareto front: %s", got)
	}
	trials, _ := s.LoadTrials(ctx, st.ID)
	var ours []string
	for _, tr := range hpo.ParetoFront(trials, st.Directions) {
		ours = append(ours, itoa(tr.Number))
	}
	if strings.Join(ours, " ") != "3 4" {
		t.Errorf("ragtune's Pareto front: %v", ours)
	}
}
