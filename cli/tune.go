package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/tune/energy"
	"github.com/ragtune/ragtune/tune/hpo"
	"github.com/ragtune/ragtune/tune/hpo/export"
	"github.com/ragtune/ragtune/tune/hpo/objective"
	"github.com/ragtune/ragtune/tune/hpo/runner"
	"github.com/ragtune/ragtune/tune/hpo/storage"
)

// newTrainObjective builds the built-in fine-tune-and-evaluate objective
// from a sweep's objective.train mapping; the training command's file sets
// it. dir is the sweep file's folder (relative paths are resolved there);
// energy sets how trials account for energy.
var newTrainObjective func(train map[string]any, dir string, energy energy.Options) (objective.Objective, error)

func init() {
	storageFlag := &ucli.StringFlag{Name: "storage", Usage: "study storage URL: sqlite:///study.db, sqlite:////abs/study.db, postgresql://user@host/db"}
	studyFlag := &ucli.StringFlag{Name: "study", Usage: "study name"}
	jsonFlag := &ucli.BoolFlag{Name: "json", Usage: "print JSON"}
	register(&ucli.Command{
		Name:  "tune",
		Usage: "hyperparameter search in Optuna-compatible studies",
		Subcommands: []*ucli.Command{
			{
				Name:      "run",
				Usage:     "run trials of a sweep (one worker; start more processes for more workers)",
				ArgsUsage: " ",
				Flags: append(energyFlags(),
					&ucli.StringFlag{Name: "config", Usage: "sweep file (YAML)", Required: true},
					storageFlag, studyFlag,
					&ucli.StringFlag{Name: "preset", Usage: "use a shipped search space instead of the sweep's (original)"},
					&ucli.IntFlag{Name: "n-trials", Usage: "run this many more COMPLETE/PRUNED trials (default: continue to the schedule's total)"},
					&ucli.DurationFlag{Name: "timeout", Usage: "start no new trial after this long (e.g. 2h)"},
					&ucli.StringFlag{Name: "schema", Value: "3.1", Usage: "schema of a new storage: 3.1 (Optuna 3.0-3.1) or 3.2 (Optuna 3.2-5.x)"},
					deviceFlag(),
					jsonFlag,
					&ucli.BoolFlag{Name: "quiet", Usage: "no per-trial progress lines"},
				),
				Action: runTuneRun,
			},
			{
				Name:      "status",
				Usage:     "list studies, or one study's trial counts, best trial and running trials",
				ArgsUsage: " ",
				Flags:     []ucli.Flag{storageFlag, studyFlag, jsonFlag},
				Action:    runTuneStatus,
			},
			{
				Name:      "best",
				Usage:     "print the best trial (the Pareto front for several objectives)",
				ArgsUsage: " ",
				Flags:     []ucli.Flag{storageFlag, studyFlag, jsonFlag},
				Action:    runTuneBest,
			},
			{
				Name:      "export",
				Usage:     "write " + strings.Join(export.Files, ", ") + " into a folder",
				ArgsUsage: " ",
				Flags:     []ucli.Flag{storageFlag, studyFlag, &ucli.StringFlag{Name: "out", Usage: "output folder", Required: true}},
				Action:    runTuneExport,
			},
		},
	})
}

// resolveStudy picks storage and study from flags, falling back to a sweep.
func resolveStudy(c *ucli.Context, sw *hpo.Sweep) (url, name string, err error) {
	url, name = c.String("storage"), c.String("study")
	if sw != nil {
		if url == "" {
			url = sw.Storage
		}
		if name == "" {
			name = sw.Study
		}
	}
	if url == "" {
		return "", "", errors.New("no storage: give --storage (or storage: in the sweep file)")
	}
	return url, name, nil
}

// trialJSON is a trial as the tune commands print it.
type trialJSON struct {
	Number   int                `json:"number"`
	State    string             `json:"state"`
	Values   []float64          `json:"values,omitempty"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
	Params   map[string]any     `json:"params"`
	Reason   string             `json:"fail_reason,omitempty"`
	Start    string             `json:"datetime_start,omitempty"`
	Complete string             `json:"datetime_complete,omitempty"`
}

func toTrialJSON(t hpo.FrozenTrial, metrics []string) trialJSON {
	out := trialJSON{Number: t.Number, State: t.State.String(), Params: t.Params}
	for _, v := range t.Values {
		out.Values = append(out.Values, jsonSafe(v))
	}
	if len(metrics) == len(t.Values) && len(metrics) > 0 {
		out.Metrics = map[string]float64{}
		for i, m := range metrics {
			out.Metrics[m] = jsonSafe(t.Values[i])
		}
	}
	out.Reason, _ = t.UserAttrs[runner.AttrFailReason].(string)
	if !t.Start.IsZero() {
		out.Start = t.Start.Format(time.RFC3339Nano)
	}
	if !t.End.IsZero() {
		out.Complete = t.End.Format(time.RFC3339Nano)
	}
	return out
}

// jsonSafe maps ±Inf to ±MaxFloat64 so that encoding/json can print it.
func jsonSafe(v float64) float64 {
	switch {
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	}
	return v
}

func runTuneRun(c *ucli.Context) error {
	sw, err := hpo.LoadSweep(c.String("config"))
	if err != nil {
		return err
	}
	if p := c.String("preset"); p != "" {
		if sw.Space, err = hpo.PresetSpace(p); err != nil {
			return fmt.Errorf("--preset: %w", err)
		}
	}
	url, name, err := resolveStudy(c, sw)
	if err != nil {
		return err
	}
	if name == "" {
		return errors.New("no study name: give --study (or study: in the sweep file)")
	}
	// The built-in objective trains on --device, unless the sweep names
	// one and the flag was not given.
	if _, inSweep := sw.Train["device"]; sw.Command == "" && sw.Train != nil && (c.IsSet("device") || !inSweep) {
		d, err := selectDevice(c)
		if err != nil {
			return err
		}
		sw.Train["device"] = d.Spec()
	}
	obj, err := sweepObjective(sw, energyOptions(c))
	if err != nil {
		return err
	}
	sampler, err := hpo.NewScheduleSampler(sw.Schedule, sw.Seed)
	if err != nil {
		return fmt.Errorf("%s: %w", sw.Path, err)
	}
	var pruner hpo.Pruner
	if sw.Pruner != nil {
		if pruner, err = hpo.NewPruner(sw.Pruner.Name, sw.Pruner.Options); err != nil {
			return fmt.Errorf("%s: pruner: %w", sw.Path, err)
		}
	}
	st, err := storage.Open(url, storage.Options{Schema: storage.Schema(c.String("schema"))})
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	study, err := st.CreateStudy(ctx, name, sw.Directions())
	if err != nil {
		return err
	}
	metrics := make([]string, len(sw.Objectives))
	for i, o := range sw.Objectives {
		metrics[i] = o.Name
	}
	if err := st.SetStudySystemAttr(ctx, study.ID, export.MetricNamesAttr, toAny(metrics)); err != nil {
		return err
	}
	quiet := c.Bool("quiet")
	stderr := c.App.ErrWriter
	if stderr == nil {
		stderr = os.Stderr
	}
	cfg := runner.Config{
		Study: study, Metrics: metrics, Space: sw.Space, Sampler: sampler, Pruner: pruner, Seed: sw.Seed,
		Objective: obj, Target: sw.Schedule.Total(), NTrials: c.Int("n-trials"), Timeout: c.Duration("timeout"),
		Heartbeat: sw.Heartbeat,
		OnTrial: func(e runner.Event) {
			if !quiet {
				fmt.Fprintln(stderr, progressLine(e, metrics))
			}
		},
		Logf: func(format string, a ...any) {
			if !quiet {
				fmt.Fprintf(stderr, "tune: "+format+"\n", a...)
			}
		},
	}
	sum, runErr := runner.Run(ctx, st, cfg)
	if c.Bool("json") {
		trials, err := st.LoadTrials(context.Background(), study.ID)
		if err != nil {
			return err
		}
		out := map[string]any{
			"study": name, "storage": url, "complete": sum.Complete, "pruned": sum.Pruned,
			"failed": sum.Failed, "stale_failed": sum.StaleFailed, "stopped": sum.Stopped,
		}
		addBest(out, trials, study.Directions, metrics)
		if err := printJSON(c.App.Writer, out); err != nil {
			return err
		}
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	if errors.Is(runErr, context.Canceled) {
		return &ExitError{Code: 130, Err: errors.New("interrupted; `ragtune tune run` again resumes the study")}
	}
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// sweepObjective builds the sweep's objective; commands run in the sweep
// file's folder so that `cmd: ./objective.sh` finds its script.
func sweepObjective(sw *hpo.Sweep, eo energy.Options) (objective.Objective, error) {
	dir := filepath.Dir(sw.Path)
	if sw.Command != "" {
		return &objective.Command{Cmd: sw.Command, Dir: dir, Stderr: os.Stderr, Energy: eo}, nil
	}
	if newTrainObjective == nil {
		return nil, fmt.Errorf("%s: objective.train: the built-in training objective is not available in this build; use objective.cmd", sw.Path)
	}
	return newTrainObjective(sw.Train, dir, eo)
}

// progressLine is "trial 7/20: #8 COMPLETE ndcg@5=0.61 | best ndcg@5=0.65 (trial 3)":
// COMPLETE+PRUNED trials of the study out of the schedule's total, then the
// trial's number (failed trials take numbers too).
func progressLine(e runner.Event, metrics []string) string {
	var b strings.Builder
	if e.Target > 0 {
		fmt.Fprintf(&b, "trial %d/%d: #%d %s", e.Done, e.Target, e.Number, e.State)
	} else {
		fmt.Fprintf(&b, "trial %d: #%d %s", e.Done, e.Number, e.State)
	}
	for i, v := range e.Values {
		if i < len(metrics) {
			fmt.Fprintf(&b, " %s=%.6g", metrics[i], v)
		}
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	switch {
	case e.Best != nil:
		fmt.Fprintf(&b, " | best %s=%.6g (trial %d)", metrics[0], e.Best.Values[0], e.Best.Number)
	case len(metrics) > 1:
		fmt.Fprintf(&b, " | Pareto front %d trials", e.Pareto)
	}
	return b.String()
}

func addBest(out map[string]any, trials []hpo.FrozenTrial, dirs []hpo.Direction, metrics []string) {
	if len(dirs) == 1 {
		if best := runner.BestTrial(trials, dirs[0]); best != nil {
			out["best"] = toTrialJSON(*best, metrics)
		}
		return
	}
	front := []trialJSON{}
	for _, t := range hpo.ParetoFront(trials, dirs) {
		front = append(front, toTrialJSON(t, metrics))
	}
	out["pareto_front"] = front
}

// openStudy opens a storage and loads a study with its trials and metric names.
func openStudy(c *ucli.Context) (*storage.Storage, storage.Study, []hpo.FrozenTrial, []string, error) {
	url, name, err := resolveStudy(c, nil)
	if err != nil {
		return nil, storage.Study{}, nil, nil, err
	}
	if name == "" {
		return nil, storage.Study{}, nil, nil, errors.New("give --study")
	}
	st, err := storage.Open(url, storage.Options{})
	if err != nil {
		return nil, storage.Study{}, nil, nil, err
	}
	study, err := st.LoadStudy(c.Context, name)
	if err != nil {
		st.Close()
		return nil, study, nil, nil, err
	}
	trials, err := st.LoadTrials(c.Context, study.ID)
	if err != nil {
		st.Close()
		return nil, study, nil, nil, err
	}
	attrs, err := st.StudySystemAttrs(c.Context, study.ID)
	if err != nil {
		st.Close()
		return nil, study, nil, nil, err
	}
	var metrics []string
	if list, ok := attrs[export.MetricNamesAttr].([]any); ok && len(list) == len(study.Directions) {
		for _, m := range list {
			metrics = append(metrics, fmt.Sprint(m))
		}
	} else {
		for i := range study.Directions {
			metrics = append(metrics, fmt.Sprintf("value_%d", i))
		}
		if len(metrics) == 1 {
			metrics[0] = "value"
		}
	}
	return st, study, trials, metrics, nil
}

func runTuneStatus(c *ucli.Context) error {
	if c.String("study") == "" {
		url, _, err := resolveStudy(c, nil)
		if err != nil {
			return err
		}
		st, err := storage.Open(url, storage.Options{})
		if err != nil {
			return err
		}
		defer st.Close()
		list, err := st.ListStudies(c.Context)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			out := []map[string]any{}
			for _, s := range list {
				out = append(out, map[string]any{"study": s.Name, "objectives": len(s.Directions), "trials": s.Trials})
			}
			return printJSON(c.App.Writer, map[string]any{"studies": out})
		}
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STUDY\tOBJECTIVES\tCOMPLETE\tPRUNED\tFAIL\tRUNNING\tWAITING")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", s.Name, len(s.Directions), s.Trials["COMPLETE"], s.Trials["PRUNED"], s.Trials["FAIL"], s.Trials["RUNNING"], s.Trials["WAITING"])
		}
		return tw.Flush()
	}
	st, study, trials, metrics, err := openStudy(c)
	if err != nil {
		return err
	}
	defer st.Close()
	counts := map[string]int{}
	for _, t := range trials {
		counts[t.State.String()]++
	}
	running, err := st.RunningTrials(c.Context, study.ID)
	if err != nil {
		return err
	}
	type runJSON struct {
		Number          int     `json:"number"`
		HeartbeatAgeSec float64 `json:"heartbeat_age_s"` // -1: no heartbeat
		Host            any     `json:"host,omitempty"`
		PID             any     `json:"pid,omitempty"`
	}
	runs := []runJSON{}
	for _, r := range running {
		age := -1.0
		if r.HeartbeatAge >= 0 {
			age = r.HeartbeatAge.Seconds()
		}
		runs = append(runs, runJSON{r.Number, age, r.SystemAttrs[runner.AttrHost], r.SystemAttrs[runner.AttrPID]})
	}
	if c.Bool("json") {
		out := map[string]any{"study": study.Name, "metrics": metrics, "directions": directionNames(study.Directions),
			"trials": counts, "running": runs}
		addBest(out, trials, study.Directions, metrics)
		return printJSON(c.App.Writer, out)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "study %s: %s\n", study.Name, objectiveText(metrics, study.Directions))
	states := make([]string, 0, len(counts))
	for s := range counts {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		fmt.Fprintf(w, "  %-8s %d\n", s, counts[s])
	}
	for _, r := range runs {
		fmt.Fprintf(w, "  running trial %d: heartbeat %.0fs ago, host %v pid %v\n", r.Number, r.HeartbeatAgeSec, r.Host, r.PID)
	}
	return printBest(w, trials, study.Directions, metrics)
}

func directionNames(dirs []hpo.Direction) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = "minimize"
		if d == hpo.Maximize {
			out[i] = "maximize"
		}
	}
	return out
}

func objectiveText(metrics []string, dirs []hpo.Direction) string {
	names := directionNames(dirs)
	parts := make([]string, len(metrics))
	for i := range metrics {
		parts[i] = names[i] + " " + metrics[i]
	}
	return strings.Join(parts, ", ")
}

func printBest(w io.Writer, trials []hpo.FrozenTrial, dirs []hpo.Direction, metrics []string) error {
	var best []hpo.FrozenTrial
	if len(dirs) == 1 {
		if b := runner.BestTrial(trials, dirs[0]); b != nil {
			best = append(best, *b)
		}
	} else {
		best = hpo.ParetoFront(trials, dirs)
		fmt.Fprintf(w, "Pareto front: %d trials\n", len(best))
	}
	if len(best) == 0 {
		fmt.Fprintln(w, "no COMPLETE trial yet")
		return nil
	}
	for _, t := range best {
		var vals []string
		for i, v := range t.Values {
			vals = append(vals, fmt.Sprintf("%s=%.6g", metrics[i], v))
		}
		fmt.Fprintf(w, "best trial %d: %s\n", t.Number, strings.Join(vals, " "))
		names := make([]string, 0, len(t.Params))
		for k := range t.Params {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(w, "  %s = %v\n", k, t.Params[k])
		}
	}
	return nil
}

func runTuneBest(c *ucli.Context) error {
	st, study, trials, metrics, err := openStudy(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.Bool("json") {
		out := map[string]any{"study": study.Name, "metrics": metrics, "directions": directionNames(study.Directions)}
		addBest(out, trials, study.Directions, metrics)
		return printJSON(c.App.Writer, out)
	}
	return printBest(c.App.Writer, trials, study.Directions, metrics)
}

func runTuneExport(c *ucli.Context) error {
	st, study, trials, metrics, err := openStudy(c)
	if err != nil {
		return err
	}
	defer st.Close()
	dir := c.String("out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := export.Write(dir, export.Study{Name: study.Name, Directions: study.Directions, Metrics: metrics, Trials: trials}); err != nil {
		return err
	}
	for _, f := range export.Files {
		fmt.Fprintln(c.App.Writer, filepath.Join(dir, f))
	}
	return nil
}
