// Package runner is the study loop of one worker: ask for a trial (claiming
// a WAITING one or creating one under the study lock), sample its parameters
// with the schedule's sampler, run the objective with heartbeats, record
// intermediate values and ask the pruner, then tell the final state. Any
// number of workers, in any processes or machines, may run one study through
// a shared storage; trials whose worker died are failed (at once when the
// worker's process is visibly gone on this host, otherwise when its heartbeat
// expires) and retried with the same parameters, Optuna's way.
package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/ragtune/ragtune/tune/hpo"
	"github.com/ragtune/ragtune/tune/hpo/objective"
	"github.com/ragtune/ragtune/tune/hpo/storage"
)

// System attribute keys ragtune adds to trials (Optuna keeps the others).
const (
	AttrHost       = "ragtune:host"
	AttrPID        = "ragtune:pid"
	AttrFailReason = "fail_reason" // a user attribute, so Optuna's dataframe shows it
)

// Config describes one worker's run of a study.
type Config struct {
	Study     storage.Study
	Metrics   []string // objective metric names, one per study direction, main first
	Space     hpo.Space
	Sampler   hpo.Sampler
	Pruner    hpo.Pruner // nil: never prune
	Seed      int64
	Objective objective.Objective

	// Target: run until the study has this many COMPLETE+PRUNED trials (the
	// schedule's total). NTrials > 0 instead asks this worker for that many
	// more COMPLETE/PRUNED trials. Failed trials never count.
	Target  int
	NTrials int
	Timeout time.Duration // no new trial starts after this (0: none)

	Heartbeat hpo.Heartbeat
	// MaxConsecutiveFailures stops the worker when this many of its trials
	// fail in a row (a broken command would otherwise loop forever); default 10.
	MaxConsecutiveFailures int
	// Poll is how long to wait when the other workers' running trials
	// already fill the target; default 1s.
	Poll time.Duration

	OnTrial func(Event) // called after each trial this worker finishes
	Logf    func(format string, a ...any)
}

// Event reports one finished trial.
type Event struct {
	Number int
	State  hpo.TrialState
	Values []float64
	Reason string // why a trial failed
	Done   int    // COMPLETE+PRUNED trials in the study afterwards
	Target int    // the study total being worked towards (0 with NTrials)
	Best   *hpo.FrozenTrial
	Pareto int // size of the Pareto front (multi-objective studies)
}

// Summary counts what this worker did.
type Summary struct {
	Complete, Pruned, Failed int
	StaleFailed              int    // other workers' trials this worker failed
	Stopped                  string // why the loop ended
}

// Run works on the study until the target is met, the timeout passes or ctx
// is cancelled (the running trial is then failed as interrupted).
func Run(ctx context.Context, st *storage.Storage, cfg Config) (Summary, error) {
	if err := cfg.check(); err != nil {
		return Summary{}, err
	}
	w := &worker{st: st, cfg: cfg, cache: storage.NewTrialCache(cfg.Study.ID)}
	w.host, _ = os.Hostname()
	w.pid = os.Getpid()
	if err := w.checkSpace(ctx); err != nil {
		return Summary{}, err
	}
	return w.loop(ctx)
}

// checkSpace refuses a search space that the study's stored trials
// contradict (another type, log flag or choices for the same name), up
// front rather than as one failed trial after another.
func (w *worker) checkSpace(ctx context.Context) error {
	trials, err := w.cache.Load(ctx, w.st)
	if err != nil {
		return err
	}
	for _, p := range w.cfg.Space {
		for _, t := range trials {
			if d := t.Distributions[p.Name]; d != nil {
				if err := hpo.CheckCompatible(d, p.Dist); err != nil {
					return fmt.Errorf("study %q: parameter %q: %v (trial %d); use another study name", w.cfg.Study.Name, p.Name, err, t.Number)
				}
				break
			}
		}
	}
	return nil
}

func (c *Config) check() error {
	switch {
	case len(c.Metrics) != len(c.Study.Directions):
		return fmt.Errorf("runner: %d metrics for %d study directions", len(c.Metrics), len(c.Study.Directions))
	case len(c.Space) == 0:
		return fmt.Errorf("runner: empty search space")
	case c.Sampler == nil || c.Objective == nil:
		return fmt.Errorf("runner: needs a sampler and an objective")
	case c.Target <= 0 && c.NTrials <= 0:
		return fmt.Errorf("runner: needs a target (schedule total) or a number of trials")
	}
	if c.Heartbeat.Interval <= 0 {
		c.Heartbeat = hpo.DefaultHeartbeat
	}
	if c.Heartbeat.Grace <= 0 {
		c.Heartbeat.Grace = 2 * c.Heartbeat.Interval
	}
	if c.MaxConsecutiveFailures <= 0 {
		c.MaxConsecutiveFailures = 10
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

type worker struct {
	st    *storage.Storage
	cache *storage.TrialCache // finished trials, loaded once
	cfg   Config
	host  string
	pid   int
	sum   Summary
}

func (w *worker) loop(ctx context.Context) (Summary, error) {
	start := time.Now()
	mine, failedInRow := 0, 0
	var lastReason string
	for {
		if ctx.Err() != nil {
			w.sum.Stopped = "interrupted"
			return w.sum, ctx.Err()
		}
		if w.cfg.Timeout > 0 && time.Since(start) >= w.cfg.Timeout {
			w.sum.Stopped = "timeout"
			return w.sum, nil
		}
		if w.cfg.NTrials > 0 && mine >= w.cfg.NTrials {
			w.sum.Stopped = "n-trials reached"
			return w.sum, nil
		}
		if err := w.failStale(ctx); err != nil {
			return w.sum, err
		}
		counts, err := w.st.StateCounts(ctx, w.cfg.Study.ID)
		if err != nil {
			return w.sum, err
		}
		if w.cfg.NTrials == 0 && counts["COMPLETE"]+counts["PRUNED"] >= w.cfg.Target {
			w.sum.Stopped = "target reached"
			return w.sum, nil
		}
		id, number, ok, err := w.ask(ctx)
		if err != nil {
			return w.sum, err
		}
		if !ok {
			// Other workers' running trials fill the target: wait for them
			// (or for their heartbeats to expire).
			select {
			case <-ctx.Done():
			case <-time.After(w.cfg.Poll):
			}
			continue
		}
		ev, err := w.runTrial(ctx, id, number)
		if err != nil {
			return w.sum, err
		}
		switch ev.State {
		case hpo.Complete, hpo.Pruned:
			mine++
			failedInRow = 0
		case hpo.Fail:
			failedInRow++
			lastReason = ev.Reason
		}
		if w.cfg.OnTrial != nil {
			w.cfg.OnTrial(ev)
		}
		if failedInRow >= w.cfg.MaxConsecutiveFailures {
			w.sum.Stopped = "too many failures"
			return w.sum, fmt.Errorf("%d trials failed in a row; last: %s", failedInRow, lastReason)
		}
	}
}

// ask claims a WAITING trial (an enqueued one or a retry) or creates a new
// one while the study is below its target.
func (w *worker) ask(ctx context.Context) (int64, int, bool, error) {
	id, number, ok, err := w.st.ClaimWaiting(ctx, w.cfg.Study.ID)
	if err != nil || ok {
		return id, number, ok, err
	}
	limit := w.cfg.Target
	if w.cfg.NTrials > 0 {
		limit = 0
	}
	return w.st.CreateTrialBelow(ctx, w.cfg.Study.ID, limit)
}

// setUserAttrs stores the result's keys that are not objective metrics as
// user attributes; lost is true when another worker finished the trial.
func (w *worker) setUserAttrs(ctx context.Context, id int64, res objective.Result) (lost bool, err error) {
	for _, k := range sortedKeys(res) {
		if contains(w.cfg.Metrics, k) {
			continue
		}
		if err := w.st.SetTrialUserAttr(ctx, id, k, res[k]); err != nil {
			return errors.Is(err, storage.ErrTrialFinished), err
		}
	}
	return false, nil
}

// runTrial runs one claimed trial to its end and records it.
func (w *worker) runTrial(ctx context.Context, id int64, number int) (Event, error) {
	ev := Event{Number: number, Target: w.cfg.Target}
	if w.cfg.NTrials > 0 {
		ev.Target = 0
	}
	if err := w.st.SetTrialSystemAttr(ctx, id, AttrHost, w.host); err != nil {
		return ev, err
	}
	if err := w.st.SetTrialSystemAttr(ctx, id, AttrPID, w.pid); err != nil {
		return ev, err
	}
	stopBeat := w.heartbeat(id)
	defer stopBeat()

	fail := func(reason string) (Event, error) {
		w.sum.Failed++
		ev.State, ev.Reason = hpo.Fail, reason
		if err := w.st.FailTrial(context.Background(), id, AttrFailReason, reason); err != nil && !errors.Is(err, storage.ErrTrialFinished) {
			return ev, err
		}
		return w.fill(ctx, ev)
	}

	trials, err := w.cache.Load(ctx, w.st)
	if err != nil {
		return ev, err
	}
	self := findTrial(trials, number)
	if self == nil {
		return ev, fmt.Errorf("trial %d vanished from the study", number)
	}
	params, dists, err := w.sample(trials, self, number)
	if err != nil {
		return fail(fmt.Sprintf("sampling: %v", err))
	}
	if err := w.st.SetParams(ctx, id, params, dists); err != nil {
		if errors.Is(err, storage.ErrTrialFinished) {
			return fail("failed by another worker before it started")
		}
		return fail(fmt.Sprintf("storing params: %v", err))
	}
	external := map[string]any{}
	for name, v := range params {
		external[name] = dists[name].ToExternal(v)
	}

	intermediate := map[int]float64{}
	var lastStep = -1
	report := func(step int, metrics map[string]float64) bool {
		v, ok := metrics[w.cfg.Metrics[0]]
		if !ok {
			return false
		}
		if err := w.st.ReportIntermediate(ctx, id, step, v); err != nil {
			w.cfg.Logf("trial %d: report step %d: %v", number, step, err)
			return errors.Is(err, storage.ErrTrialFinished) // someone failed us: stop
		}
		intermediate[step] = v
		if step > lastStep {
			lastStep = step
		}
		if w.cfg.Pruner == nil {
			return false
		}
		all, err := w.cache.Load(ctx, w.st)
		if err != nil {
			w.cfg.Logf("trial %d: loading trials for the pruner: %v", number, err)
			return false
		}
		me := findTrial(all, number)
		if me == nil {
			return false
		}
		return w.cfg.Pruner.Prune(hpo.PruneRequest{Trials: all, Directions: w.cfg.Study.Directions, Trial: *me, Step: step})
	}

	res, err := w.cfg.Objective.Run(ctx, objective.Trial{Number: number, Params: external}, report)
	var failure *objective.Failure
	switch {
	case errors.Is(err, objective.ErrPruned):
		// What a pruned trial spent (energy, memory) is kept when the
		// objective says.
		if lost, err := w.setUserAttrs(ctx, id, res); lost || err != nil {
			if lost {
				return w.lost(ev)
			}
			return ev, err
		}
		var values []float64
		// Optuna keeps a pruned single-objective trial's last value as its value.
		if v, ok := intermediate[lastStep]; ok && len(w.cfg.Metrics) == 1 && !math.IsNaN(v) {
			values = []float64{v}
		}
		if err := w.st.Finish(context.Background(), id, hpo.Pruned, values); err != nil {
			if errors.Is(err, storage.ErrTrialFinished) {
				return w.lost(ev)
			}
			return ev, err
		}
		w.sum.Pruned++
		ev.State, ev.Values = hpo.Pruned, values
		return w.fill(ctx, ev)
	case errors.As(err, &failure):
		return fail(failure.Reason)
	case err != nil:
		if _, ferr := fail(err.Error()); ferr != nil {
			return ev, ferr
		}
		return ev, err
	}
	values := make([]float64, len(w.cfg.Metrics))
	for i, m := range w.cfg.Metrics {
		raw, ok := res[m]
		if !ok {
			return fail(fmt.Sprintf("result lacks metric %q", m))
		}
		f, ok := raw.(float64)
		if !ok {
			return fail(fmt.Sprintf("metric %q is %v, not a number", m, raw))
		}
		if math.IsNaN(f) {
			return fail(fmt.Sprintf("metric %q is NaN", m))
		}
		values[i] = f
	}
	if lost, err := w.setUserAttrs(ctx, id, res); lost || err != nil {
		if lost {
			return w.lost(ev)
		}
		return ev, err
	}
	if err := w.st.Finish(context.Background(), id, hpo.Complete, values); err != nil {
		if errors.Is(err, storage.ErrTrialFinished) {
			return w.lost(ev)
		}
		return ev, err
	}
	w.sum.Complete++
	ev.State, ev.Values = hpo.Complete, values
	return w.fill(ctx, ev)
}

// lost is a trial another worker declared stale while it still ran here.
func (w *worker) lost(ev Event) (Event, error) {
	w.sum.Failed++
	ev.State, ev.Reason = hpo.Fail, "failed by another worker (heartbeat expired)"
	return ev, nil
}

// fill adds the study's progress and best trial to an event.
func (w *worker) fill(ctx context.Context, ev Event) (Event, error) {
	trials, err := w.cache.Load(ctx, w.st)
	if err != nil {
		return ev, err
	}
	for _, t := range trials {
		if t.State == hpo.Complete || t.State == hpo.Pruned {
			ev.Done++
		}
	}
	if len(w.cfg.Study.Directions) == 1 {
		ev.Best = BestTrial(trials, w.cfg.Study.Directions[0])
	} else {
		ev.Pareto = len(hpo.ParetoFront(trials, w.cfg.Study.Directions))
	}
	return ev, nil
}

// BestTrial is the COMPLETE trial with the best first value (lowest number
// on ties); nil if there is none.
func BestTrial(trials []hpo.FrozenTrial, dir hpo.Direction) *hpo.FrozenTrial {
	var best *hpo.FrozenTrial
	for i := range trials {
		t := &trials[i]
		if t.State != hpo.Complete || len(t.Values) == 0 || math.IsNaN(t.Values[0]) {
			continue
		}
		if best == nil || (dir == hpo.Maximize && t.Values[0] > best.Values[0]) || (dir == hpo.Minimize && t.Values[0] < best.Values[0]) {
			best = t
		}
	}
	return best
}

// sample fixes the trial's parameters: values already stored with the trial
// (a retry), then enqueued fixed_params, then the sampler for the rest.
func (w *worker) sample(trials []hpo.FrozenTrial, self *hpo.FrozenTrial, number int) (map[string]float64, map[string]hpo.Distribution, error) {
	params := map[string]float64{}
	dists := map[string]hpo.Distribution{}
	fixed, _ := self.SystemAttrs["fixed_params"].(map[string]any)
	need := false
	for _, p := range w.cfg.Space {
		dists[p.Name] = p.Dist
		if v, ok := self.InternalParams[p.Name]; ok && self.Distributions[p.Name] != nil {
			params[p.Name], dists[p.Name] = v, self.Distributions[p.Name]
			continue
		}
		if ext, ok := fixed[p.Name]; ok {
			v, err := p.Dist.ToInternal(ext)
			if err != nil {
				return nil, nil, fmt.Errorf("fixed_params %q: %v", p.Name, err)
			}
			params[p.Name] = v
			continue
		}
		need = true
	}
	if !need {
		return params, dists, nil
	}
	suggested, err := w.cfg.Sampler.Suggest(hpo.SuggestRequest{
		Trials: trials, Directions: w.cfg.Study.Directions, Space: w.cfg.Space, Number: number, Seed: w.cfg.Seed,
	})
	if err != nil {
		return nil, nil, err
	}
	for _, p := range w.cfg.Space {
		if _, done := params[p.Name]; done {
			continue
		}
		v, ok := suggested[p.Name]
		if !ok {
			return nil, nil, fmt.Errorf("sampler %s gave no value for %q", w.cfg.Sampler.Name(), p.Name)
		}
		params[p.Name] = v
	}
	return params, dists, nil
}

// heartbeat stamps the trial now and every interval until stopped.
func (w *worker) heartbeat(id int64) (stop func()) {
	if err := w.st.Heartbeat(context.Background(), id); err != nil {
		w.cfg.Logf("heartbeat: %v", err)
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(w.cfg.Heartbeat.Interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := w.st.Heartbeat(context.Background(), id); err != nil {
					w.cfg.Logf("heartbeat: %v", err)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// failStale fails RUNNING trials whose worker is gone: at once when their
// host is this one and their process no longer exists, otherwise when their
// heartbeat is older than the grace period. Each is retried (a WAITING copy
// with the same parameters) up to MaxRetry times, as Optuna's
// RetryFailedTrialCallback does.
func (w *worker) failStale(ctx context.Context) error {
	running, err := w.st.RunningTrials(ctx, w.cfg.Study.ID)
	if err != nil {
		return err
	}
	for _, rt := range running {
		host, _ := rt.SystemAttrs[AttrHost].(string)
		pid, _ := rt.SystemAttrs[AttrPID].(int64)
		reason := ""
		switch {
		case host == w.host && pid > 0 && int(pid) != w.pid && !processAlive(int(pid)):
			reason = fmt.Sprintf("worker process %d on %s is gone", pid, host)
		case rt.HeartbeatAge >= 0 && rt.HeartbeatAge > w.cfg.Heartbeat.Grace:
			reason = fmt.Sprintf("no heartbeat for %s (grace %s)", rt.HeartbeatAge.Round(time.Second), w.cfg.Heartbeat.Grace)
		default:
			continue
		}
		err := w.st.FailTrial(ctx, rt.ID, AttrFailReason, reason)
		if errors.Is(err, storage.ErrTrialFinished) {
			continue // another worker got there first
		}
		if err != nil {
			return err
		}
		w.sum.StaleFailed++
		w.cfg.Logf("trial %d: failed as stale: %s", rt.Number, reason)
		if err := w.retry(ctx, rt.Number); err != nil {
			return err
		}
	}
	return nil
}

// retry enqueues a WAITING copy of a stale trial with Optuna's failed_trial
// and retry_history system attributes.
func (w *worker) retry(ctx context.Context, number int) error {
	trials, err := w.cache.Load(ctx, w.st)
	if err != nil {
		return err
	}
	t := findTrial(trials, number)
	if t == nil {
		return nil
	}
	sys := map[string]any{"failed_trial": int64(number)}
	for k, v := range t.SystemAttrs {
		if k != AttrHost && k != AttrPID {
			sys[k] = v
		}
	}
	history, _ := sys["retry_history"].([]any)
	history = append(append([]any(nil), history...), int64(number))
	sys["retry_history"] = history
	if w.cfg.Heartbeat.MaxRetry < len(history) {
		return nil
	}
	user := map[string]any{}
	for k, v := range t.UserAttrs {
		if k != AttrFailReason {
			user[k] = v
		}
	}
	_, n, err := w.st.AddTrial(ctx, w.cfg.Study.ID, hpo.FrozenTrial{
		State: hpo.Waiting, InternalParams: t.InternalParams, Distributions: t.Distributions,
		UserAttrs: user, SystemAttrs: sys,
	})
	if err == nil {
		w.cfg.Logf("trial %d: retried as trial %d", number, n)
	}
	return err
}

// processAlive reports whether a process exists (zombies count as dead).
func processAlive(pid int) bool {
	if err := syscallKill0(pid); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill(2)
	}
	// Format: pid (comm) state ...; comm may contain spaces and parentheses.
	for i := len(stat) - 1; i >= 0; i-- {
		if stat[i] == ')' {
			return !(i+2 < len(stat) && stat[i+2] == 'Z')
		}
	}
	return true
}

func findTrial(trials []hpo.FrozenTrial, number int) *hpo.FrozenTrial {
	for i := range trials {
		if trials[i].Number == number {
			return &trials[i]
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
