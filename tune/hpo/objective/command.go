package objective

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ragtune/ragtune/tune/energy"
	"github.com/ragtune/ragtune/tune/hpo/storage"
)

// Command is an external objective (objective.cmd in a sweep file), run once
// per trial through /bin/sh with DESIGN.md's protocol:
//
//   - stdin: one JSON line, {"trial": N, "params": {...}};
//   - stdout: any number of {"step": K, "intermediate": {"ndcg@5": V}} lines
//     (reported for pruning; a pruned trial gets SIGTERM, its process group
//     SIGKILL after KillGrace), then the result as the last line: a JSON
//     object with every objective metric; extra keys become user attributes;
//   - a non-zero exit fails the trial with its status and the tail of stderr;
//     a result {"error": "diverged"} fails it with that reason.
//
// The result also gets what the kernel accounted for the command (and the
// processes it waited for): wall_seconds, cpu_seconds, peak_rss_bytes, and
// codecarbon's estimate of their energy_kwh and emissions_kg with its
// energy_method; keys the command printed itself are kept as printed.
//
// Python's NaN/Infinity tokens are accepted on stdout.
type Command struct {
	Cmd       string
	Dir       string         // working directory ("" = current)
	Env       []string       // extra environment, KEY=VALUE
	KillGrace time.Duration  // SIGTERM → SIGKILL delay; default 10s
	Stderr    io.Writer      // also receives the command's stderr (nil: kept only for reasons)
	Energy    energy.Options // carbon intensity and CPU power of the estimate
}

// stderrTail keeps the last bytes of stderr for failure reasons.
type stderrTail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *stderrTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// Run implements Objective.
func (c *Command) Run(ctx context.Context, t Trial, report ReportFunc) (Result, error) {
	input, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("trial %d: encoding params: %v", t.Number, err)
	}
	cmd := exec.Command("/bin/sh", "-c", c.Cmd)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = strings.NewReader(string(input) + "\n")
	// Its own process group, so SIGTERM reaches the shell's children too;
	// and a SIGTERM if this worker dies (even by SIGKILL), so a trial never
	// outlives the worker that would record it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	tail := &stderrTail{max: 2000}
	cmd.Stderr = tail
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(tail, c.Stderr)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, Failf("starting %q: %v", c.Cmd, err)
	}

	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for sc.Scan() {
			lines <- sc.Text()
		}
		readErr <- sc.Err()
		close(lines)
	}()

	var last string
	pruned, stopped := false, false
	var killTimer *time.Timer
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		grace := c.KillGrace
		if grace == 0 {
			grace = 10 * time.Second
		}
		killTimer = time.AfterFunc(grace, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	}
	done := ctx.Done()
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break loop
			}
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			if step, metrics, isStep := parseIntermediate(line); isStep {
				if !stopped && report != nil && report(step, metrics) {
					pruned = true
					stop()
				}
				continue
			}
			last = line
		case <-done:
			done = nil
			stop()
		}
	}
	scanErr := <-readErr
	waitErr := cmd.Wait()
	if killTimer != nil {
		killTimer.Stop()
	}
	switch {
	case pruned:
		return nil, ErrPruned
	case ctx.Err() != nil:
		return nil, Failf("interrupted (%v)", ctx.Err())
	case waitErr != nil:
		reason := waitErr.Error()
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) && ee.Exited() {
			reason = fmt.Sprintf("exit status %d", ee.ExitCode())
		}
		if s := tail.String(); s != "" {
			reason += ": " + lastLines(s, 5)
		}
		return nil, &Failure{Reason: reason}
	case scanErr != nil:
		return nil, Failf("reading stdout: %v", scanErr)
	case last == "":
		return nil, Failf("no result line on stdout")
	}
	v, err := storage.DecodeJSON(last)
	obj, isObj := v.(map[string]any)
	if err != nil || !isObj {
		return nil, Failf("last stdout line is not a JSON object: %s", clip(last))
	}
	if e, ok := obj["error"]; ok && e != nil {
		return nil, Failf("%v", e)
	}
	res := Result{}
	if cpu, rss, err := energy.ChildUsage(cmd.ProcessState); err == nil {
		e := energy.Process(cpu, time.Since(start).Seconds(), rss, c.Energy.CPUPower, runtime.NumCPU(), c.Energy.CarbonIntensity)
		res["wall_seconds"], res["cpu_seconds"], res["peak_rss_bytes"] = e.DurationSeconds, e.CPUSeconds, float64(e.PeakRSSBytes)
		res["energy_kwh"], res["emissions_kg"], res["energy_method"] = e.EnergyKWh, e.EmissionsKg, e.Method
	}
	for k, v := range obj {
		if i, ok := v.(int64); ok {
			v = float64(i)
		}
		res[k] = v
	}
	return res, nil
}

// parseIntermediate recognises {"step": K, "intermediate": {...}} lines.
func parseIntermediate(line string) (int, map[string]float64, bool) {
	if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"intermediate"`) {
		return 0, nil, false
	}
	v, err := storage.DecodeJSON(line)
	obj, ok := v.(map[string]any)
	if err != nil || !ok || len(obj) != 2 {
		return 0, nil, false
	}
	step, ok := obj["step"].(int64)
	inter, ok2 := obj["intermediate"].(map[string]any)
	if !ok || !ok2 || step < 0 || step > math.MaxInt32 {
		return 0, nil, false
	}
	metrics := map[string]float64{}
	for k, v := range inter {
		switch x := v.(type) {
		case float64:
			metrics[k] = x
		case int64:
			metrics[k] = float64(x)
		}
	}
	return int(step), metrics, true
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
