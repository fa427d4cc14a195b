package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ragtune/ragtune/tune/hpo"
	"github.com/ragtune/ragtune/tune/hpo/objective"
	"github.com/ragtune/ragtune/tune/hpo/storage"
	"github.com/ragtune/ragtune/tune/hpo/storage/pgtest"
)

// Worker processes are this test binary re-executed with RUNNER_WORKER set:
// real separate processes with their own pids, as `ragtune tune run` would be.
func TestMain(m *testing.M) {
	if os.Getenv("RUNNER_WORKER") == "1" {
		os.Exit(workerMain())
	}
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

var space = hpo.Space{
	{Name: "x", Dist: hpo.FloatDistribution{Low: -5, High: 5}},
	{Name: "n", Dist: hpo.IntDistribution{Low: 0, High: 10, Step: 1}},
	{Name: "opt", Dist: hpo.CategoricalDistribution{Choices: []any{"adam", "sgd"}}},
}

// quadratic is a cheap objective with a known minimum at x = 1, n = 3.
// Trial sleepAt sleeps for sleep (a trial to kill); every trial takes delay.
func quadratic(sleepAt int, sleep, delay time.Duration) objective.Objective {
	return objective.Func(func(ctx context.Context, t objective.Trial, report objective.ReportFunc) (objective.Result, error) {
		time.Sleep(delay)
		x := t.Params["x"].(float64)
		n := float64(t.Params["n"].(int64))
		v := (x-1)*(x-1) + (n-3)*(n-3)
		for step := 0; step < 3; step++ {
			if report(step, map[string]float64{"loss": v + float64(3-step)}) {
				// What the trial spent, kept as a user attribute.
				return objective.Result{"steps_spent": float64(step + 1)}, objective.ErrPruned
			}
		}
		if t.Number == sleepAt {
			select {
			case <-time.After(sleep):
			case <-ctx.Done():
				return nil, objective.Failf("interrupted")
			}
		}
		return objective.Result{"loss": v, "opt_used": t.Params["opt"]}, nil
	})
}

func config(t testing.TB, st *storage.Storage, name string, target int) Config {
	t.Helper()
	study, err := st.CreateStudy(context.Background(), name, []hpo.Direction{hpo.Minimize})
	if err != nil {
		t.Fatal(err)
	}
	smp, err := hpo.NewScheduleSampler(hpo.Schedule{{Name: "random", Trials: target}}, 7)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Study: study, Metrics: []string{"loss"}, Space: space, Sampler: smp, Seed: 7,
		Objective: quadratic(-1, 0, 0), Target: target,
		Heartbeat: hpo.Heartbeat{Interval: 200 * time.Millisecond, Grace: time.Second, MaxRetry: 1},
		Poll:      100 * time.Millisecond,
	}
}

func openStorage(t testing.TB, url string) *storage.Storage {
	t.Helper()
	st, err := storage.Open(url, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func sqliteURL(t testing.TB) string { return "sqlite:///" + filepath.Join(t.TempDir(), "study.db") }

// checkStudy asserts numbers 0..n-1 each once and returns counts by state.
func checkStudy(t *testing.T, st *storage.Storage, name string) (map[hpo.TrialState]int, []hpo.FrozenTrial) {
	t.Helper()
	study, err := st.LoadStudy(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := st.LoadTrials(context.Background(), study.ID)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[hpo.TrialState]int{}
	for i, tr := range trials {
		if tr.Number != i {
			t.Fatalf("trial numbers are not 0..n-1: position %d has number %d", i, tr.Number)
		}
		counts[tr.State]++
		if tr.State == hpo.Complete && (len(tr.Values) != 1 || len(tr.Params) != len(space)) {
			t.Errorf("trial %d incomplete record: %+v", i, tr)
		}
	}
	return counts, trials
}

func TestRunReachesTargetAndResumes(t *testing.T) {
	st := openStorage(t, sqliteURL(t))
	cfg := config(t, st, "basic", 6)
	var events []Event
	cfg.OnTrial = func(e Event) { events = append(events, e) }
	sum, err := Run(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Complete != 6 || sum.Stopped != "target reached" || len(events) != 6 {
		t.Fatalf("summary %+v, %d events", sum, len(events))
	}
	last := events[5]
	if last.Done != 6 || last.Target != 6 || last.Best == nil {
		t.Errorf("last event %+v", last)
	}
	// Running again on a finished study does nothing; --n-trials asks for more.
	if sum, _ := Run(context.Background(), st, cfg); sum.Complete != 0 {
		t.Errorf("second run ran %d trials", sum.Complete)
	}
	cfg.NTrials = 2
	if sum, _ := Run(context.Background(), st, cfg); sum.Complete != 2 {
		t.Errorf("--n-trials 2 ran %d trials", sum.Complete)
	}
	counts, trials := checkStudy(t, st, "basic")
	if counts[hpo.Complete] != 8 {
		t.Errorf("counts %v", counts)
	}
	if trials[0].UserAttrs["opt_used"] == nil || trials[0].SystemAttrs[AttrPID] == nil || trials[0].Heartbeat.IsZero() {
		t.Errorf("trial 0 attrs %v %v", trials[0].UserAttrs, trials[0].SystemAttrs)
	}
	if len(trials[0].Intermediate) != 3 {
		t.Errorf("intermediate values %v", trials[0].Intermediate)
	}
}

// Failing trials (non-zero exit, NaN, a diverged run, a missing metric) are
// FAILED with their reason and replaced; the study reaches its target.
func TestFailedTrialsAreRecordedAndReplaced(t *testing.T) {
	st := openStorage(t, sqliteURL(t))
	cfg := config(t, st, "failing", 4)
	dir := t.TempDir()
	// Trial k behaves by k: 0 exits 2, 1 prints NaN, 2 diverges, 3 lacks the
	// metric; later trials succeed.
	script := filepath.Join(dir, "obj.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
read line
k=$(echo "$line" | sed 's/.*"trial":\([0-9]*\).*/\1/')
case $k in
0) echo "CUDA out of memory" >&2; exit 2;;
1) echo '{"loss": NaN}';;
2) echo '{"error": "diverged: loss is inf at step 40"}';;
3) echo '{"other": 1}';;
*) echo "{\"step\": 0, \"intermediate\": {\"loss\": 2}}"; echo "{\"loss\": $k.5}";;
esac
`), 0o755)
	cfg.Objective = &objective.Command{Cmd: script}
	var reasons []string
	cfg.OnTrial = func(e Event) {
		if e.State == hpo.Fail {
			reasons = append(reasons, e.Reason)
		}
	}
	sum, err := Run(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Complete != 4 || sum.Failed != 4 {
		t.Errorf("summary %+v", sum)
	}
	counts, trials := checkStudy(t, st, "failing")
	if counts[hpo.Fail] != 4 || counts[hpo.Complete] != 4 {
		t.Errorf("counts %v", counts)
	}
	want := []string{"exit status 2: CUDA out of memory", `metric "loss" is NaN`, "diverged: loss is inf at step 40", `result lacks metric "loss"`}
	for i, w := range want {
		if got, _ := trials[i].UserAttrs[AttrFailReason].(string); got != w {
			t.Errorf("trial %d reason %q, want %q", i, got, w)
		}
		if i < len(reasons) && reasons[i] != w {
			t.Errorf("event %d reason %q, want %q", i, reasons[i], w)
		}
	}
	if trials[4].Values[0] != 4.5 || len(trials[4].Intermediate) != 1 {
		t.Errorf("trial 4 = %+v", trials[4])
	}
}

// A command that always fails stops the worker instead of looping forever.
func TestBrokenObjectiveStops(t *testing.T) {
	st := openStorage(t, sqliteURL(t))
	cfg := config(t, st, "broken", 50)
	cfg.Objective = &objective.Command{Cmd: "exit 1"}
	cfg.MaxConsecutiveFailures = 3
	if _, err := Run(context.Background(), st, cfg); err == nil || !strings.Contains(err.Error(), "3 trials failed in a row") {
		t.Errorf("err = %v", err)
	}
}

func TestPruning(t *testing.T) {
	st := openStorage(t, sqliteURL(t))
	cfg := config(t, st, "pruned", 12)
	p, err := hpo.NewPruner("median", map[string]any{"n_startup_trials": 2})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pruner = p
	if _, err := Run(context.Background(), st, cfg); err != nil {
		t.Fatal(err)
	}
	counts, trials := checkStudy(t, st, "pruned")
	if counts[hpo.Pruned] == 0 || counts[hpo.Complete]+counts[hpo.Pruned] != 12 {
		t.Fatalf("counts %v", counts)
	}
	for _, tr := range trials {
		if tr.State == hpo.Pruned && (len(tr.Values) != 1 || tr.Values[0] != tr.Intermediate[len(tr.Intermediate)-1]) {
			t.Errorf("pruned trial %d keeps value %v, intermediate %v", tr.Number, tr.Values, tr.Intermediate)
		}
		if tr.State == hpo.Pruned && tr.UserAttrs["steps_spent"] != float64(len(tr.Intermediate)) {
			t.Errorf("pruned trial %d: user attribute steps_spent %v after %d steps", tr.Number, tr.UserAttrs["steps_spent"], len(tr.Intermediate))
		}
	}
}

// Enqueued trials (Optuna's fixed_params) are run with their values.
func TestEnqueuedTrialUsesFixedParams(t *testing.T) {
	st := openStorage(t, sqliteURL(t))
	cfg := config(t, st, "enqueued", 2)
	if _, _, err := st.AddTrial(context.Background(), cfg.Study.ID, hpo.FrozenTrial{State: hpo.Waiting,
		SystemAttrs: map[string]any{"fixed_params": map[string]any{"x": 1.0, "n": int64(3)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), st, cfg); err != nil {
		t.Fatal(err)
	}
	_, trials := checkStudy(t, st, "enqueued")
	if trials[0].Params["x"] != 1.0 || trials[0].Params["n"] != int64(3) || trials[0].Values[0] != 0 {
		t.Errorf("enqueued trial ran with %v = %v", trials[0].Params, trials[0].Values)
	}
}

// ---- several processes ----

// workerMain runs one worker from environment settings and exits.
func workerMain() int {
	st, err := storage.Open(os.Getenv("RUNNER_URL"), storage.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer st.Close()
	target, _ := strconv.Atoi(os.Getenv("RUNNER_TARGET"))
	sleepAt, _ := strconv.Atoi(os.Getenv("RUNNER_SLEEP_AT"))
	study, err := st.CreateStudy(context.Background(), os.Getenv("RUNNER_STUDY"), []hpo.Direction{hpo.Minimize})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	seed, _ := strconv.ParseInt(os.Getenv("RUNNER_SEED"), 10, 64)
	smp, _ := hpo.NewScheduleSampler(hpo.Schedule{{Name: "random", Trials: target}}, seed)
	obj := quadratic(sleepAt, time.Minute, 20*time.Millisecond)
	if c := os.Getenv("RUNNER_CMD"); c != "" {
		obj = &objective.Command{Cmd: c}
	}
	_, err = Run(context.Background(), st, Config{
		Study: study, Metrics: []string{"loss"}, Space: space, Sampler: smp, Seed: seed,
		Objective: obj, Target: target,
		Heartbeat: hpo.Heartbeat{Interval: 200 * time.Millisecond, Grace: 2 * time.Second, MaxRetry: 1},
		Poll:      100 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startWorker(t *testing.T, url, study string, target, sleepAt int, seed int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RUNNER_WORKER=1", "RUNNER_URL="+url, "RUNNER_STUDY="+study,
		"RUNNER_TARGET="+strconv.Itoa(target), "RUNNER_SLEEP_AT="+strconv.Itoa(sleepAt), "RUNNER_SEED="+strconv.Itoa(seed))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func runWorkers(t *testing.T, url string, n, target int) {
	st := openStorage(t, url)
	if _, err := st.CreateStudy(context.Background(), "shared", []hpo.Direction{hpo.Minimize}); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for i := 0; i < n; i++ {
		cmds = append(cmds, startWorker(t, url, "shared", target, -1, i+1))
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	counts, trials := checkStudy(t, st, "shared")
	if counts[hpo.Complete] != target || len(trials) != target {
		t.Errorf("%d workers left %v in %d trials; want %d COMPLETE", n, counts, len(trials), target)
	}
	pids := map[any]int{}
	for _, tr := range trials {
		pids[tr.SystemAttrs[AttrPID]]++
	}
	t.Logf("trials per worker pid: %v", pids)
}

func TestTwoWorkersSQLite(t *testing.T) { runWorkers(t, sqliteURL(t), 2, 16) }

func TestFourWorkersPostgres(t *testing.T) { runWorkers(t, pgtest.URL(t), 4, 24) }

// A worker killed with SIGKILL mid-trial loses no finished trial; its
// trial is failed at once by the pid check (same host) and retried, and a
// new run finishes the study.
func TestKilledWorkerPidCheck(t *testing.T) {
	url := sqliteURL(t)
	st := openStorage(t, url)
	w := startWorker(t, url, "killed", 6, 3, 1)
	study := waitRunning(t, st, "killed", 3)
	w.Process.Signal(syscall.SIGKILL)
	w.Wait() // reaped: the pid is gone
	counts, _ := checkStudy(t, st, "killed")
	if counts[hpo.Complete] != 3 || counts[hpo.Running] != 1 {
		t.Fatalf("after the kill: %v", counts)
	}
	cfg := config(t, st, "killed", 6)
	cfg.Study = study
	sum, err := Run(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.StaleFailed != 1 {
		t.Errorf("summary %+v", sum)
	}
	counts, trials := checkStudy(t, st, "killed")
	if counts[hpo.Complete] != 6 || counts[hpo.Fail] != 1 {
		t.Errorf("after resuming: %v", counts)
	}
	reason, _ := trials[3].UserAttrs[AttrFailReason].(string)
	retry := trials[4]
	if !strings.Contains(reason, "is gone") || retry.SystemAttrs["failed_trial"] != int64(3) ||
		retry.Params["x"] != trials[3].Params["x"] || retry.State != hpo.Complete {
		t.Errorf("stale trial reason %q; retry %+v", reason, retry)
	}
}

// When the dead worker was on another host, only its heartbeat tells: the
// trial is failed once the grace period has passed, not before.
func TestKilledWorkerHeartbeatExpiry(t *testing.T) {
	url := sqliteURL(t)
	st := openStorage(t, url)
	w := startWorker(t, url, "remote", 4, 1, 1)
	study := waitRunning(t, st, "remote", 1)
	w.Process.Signal(syscall.SIGKILL)
	w.Wait()
	running, _ := st.RunningTrials(context.Background(), study.ID)
	if len(running) != 1 {
		t.Fatalf("running %+v", running)
	}
	st.SetTrialSystemAttr(context.Background(), running[0].ID, AttrHost, "another-machine")
	cfg := config(t, st, "remote", 4)
	cfg.Heartbeat.Grace = 2 * time.Second
	cfg.Heartbeat.MaxRetry = 0
	// With a fresh heartbeat the trial is left alone: it might be alive.
	if err := (&worker{st: st, cache: storage.NewTrialCache(study.ID), cfg: cfg, host: "here", pid: os.Getpid()}).failStale(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.StateCounts(context.Background(), study.ID); c["RUNNING"] != 1 {
		t.Fatalf("a trial with a fresh heartbeat was failed: %v", c)
	}
	// Grace is 2 s; the heartbeat clock has second resolution on SQLite.
	time.Sleep(3100 * time.Millisecond)
	sum, err := Run(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	counts, trials := checkStudy(t, st, "remote")
	reason, _ := trials[1].UserAttrs[AttrFailReason].(string)
	if sum.StaleFailed != 1 || counts[hpo.Complete] != 4 || !strings.Contains(reason, "no heartbeat") {
		t.Errorf("summary %+v counts %v reason %q", sum, counts, reason)
	}
}

func waitRunning(t *testing.T, st *storage.Storage, name string, number int) storage.Study {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		study, err := st.LoadStudy(context.Background(), name)
		if err == nil {
			running, _ := st.RunningTrials(context.Background(), study.ID)
			for _, r := range running {
				if r.Number == number && r.HeartbeatAge >= 0 {
					return study
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("trial %d of %s never started", number, name)
	return storage.Study{}
}

func TestProcessAlive(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Error("own process reported dead")
	}
	c := exec.Command("true")
	c.Run()
	if processAlive(c.Process.Pid) {
		t.Error("reaped process reported alive")
	}
}

// A Python Optuna worker and a ragtune worker share one SQLite study at the
// same time: numbers stay unique and contiguous, every trial is recorded.
func TestOptunaAndRagtuneWorkersTogether(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import optuna").Run(); err != nil {
		pgtest.SkipOrFail(t, "Optuna not importable by %s", py)
	}
	url := sqliteURL(t)
	st := openStorage(t, url)
	if _, err := st.CreateStudy(context.Background(), "mixed", []hpo.Direction{hpo.Minimize}); err != nil {
		t.Fatal(err)
	}
	pyCmd := exec.Command(py, "-c", `
import sys, time, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
storage = optuna.storages.RDBStorage(sys.argv[1], engine_kwargs={"connect_args": {"timeout": 60}})
s = optuna.load_study(study_name="mixed", storage=storage)
def f(tr):
    x = tr.suggest_float("x", -5, 5)
    n = tr.suggest_int("n", 0, 10)
    tr.suggest_categorical("opt", ["adam", "sgd"])
    time.sleep(0.02)
    return (x - 1) ** 2 + (n - 3) ** 2
s.optimize(f, n_trials=8)
`, url)
	pyCmd.Stderr = os.Stderr
	if err := pyCmd.Start(); err != nil {
		t.Fatal(err)
	}
	goWorker := startWorker(t, url, "mixed", 16, -1, 1)
	if err := pyCmd.Wait(); err != nil {
		t.Errorf("Optuna worker: %v", err)
	}
	if err := goWorker.Wait(); err != nil {
		t.Errorf("ragtune worker: %v", err)
	}
	counts, trials := checkStudy(t, st, "mixed")
	fromGo := 0
	for _, tr := range trials {
		if tr.SystemAttrs[AttrPID] != nil {
			fromGo++
		}
	}
	if counts[hpo.Complete] != len(trials) || len(trials) < 16 || fromGo == 0 || len(trials)-fromGo != 8 {
		t.Errorf("%d trials (%d by ragtune), states %v", len(trials), fromGo, counts)
	}
}

func TestSpaceMustMatchStudy(t *testing.T) {
	st := openStorage(t, sqliteURL(t))
	cfg := config(t, st, "space", 2)
	if _, err := Run(context.Background(), st, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Space = hpo.Space{{Name: "opt", Dist: hpo.CategoricalDistribution{Choices: []any{"adam", "lion"}}}}
	cfg.NTrials = 1
	if _, err := Run(context.Background(), st, cfg); err == nil || !strings.Contains(err.Error(), `parameter "opt"`) {
		t.Errorf("err = %v", err)
	}
}

func TestTimeoutStopsNewTrials(t *testing.T) {
	st := openStorage(t, sqliteURL(t))
	cfg := config(t, st, "timeout", 1000)
	cfg.Objective = quadratic(-1, 0, 30*time.Millisecond)
	cfg.Timeout = 200 * time.Millisecond
	sum, err := Run(context.Background(), st, cfg)
	if err != nil || sum.Stopped != "timeout" || sum.Complete == 0 || sum.Complete > 20 {
		t.Errorf("summary %+v, %v", sum, err)
	}
}

// The objective command of a worker killed with SIGKILL is terminated too
// (it must not go on training with nobody to record its result).
func TestKilledWorkerTakesItsCommandAlong(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	t.Setenv("RUNNER_CMD", "echo $$ > "+pidFile+"; exec sleep 30")
	url := sqliteURL(t)
	st := openStorage(t, url)
	w := startWorker(t, url, "orphan", 1, -1, 1)
	waitRunning(t, st, "orphan", 0)
	var pid int
	for i := 0; i < 100 && pid == 0; i++ {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("the objective never started")
	}
	w.Process.Signal(syscall.SIGKILL)
	w.Wait()
	for i := 0; i < 100 && processAlive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if processAlive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("objective process %d outlived its killed worker", pid)
	}
}

// A RUNNING trial with no heartbeat (Optuna's ask without tell) never goes
// stale, so it must not hold the study below its target forever.
func TestRunningTrialWithoutHeartbeatDoesNotBlock(t *testing.T) {
	st := openStorage(t, sqliteURL(t))
	cfg := config(t, st, "asked", 2)
	if _, _, err := st.AddTrial(context.Background(), cfg.Study.ID, hpo.FrozenTrial{State: hpo.Running}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sum, err := Run(ctx, st, cfg)
	if err != nil || sum.Complete != 2 {
		t.Errorf("summary %+v, %v", sum, err)
	}
}
