package objective

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ragtune/ragtune/tune/energy"
)

// quadratic reads x from the params with awk, reports three steps and
// prints its result: no Python needed.
const quadratic = `awk '{ match($0, /"x":[-0-9.e]+/); x = substr($0, RSTART+4, RLENGTH-4);
for (s = 0; s < 3; s++) printf("{\"step\": %d, \"intermediate\": {\"score\": %g}}\n", s, x*x + 3 - s);
printf("{\"score\": %g, \"flops\": 1e9, \"note\": \"ok\"}\n", x*x) }'`

func TestCommandProtocol(t *testing.T) {
	var steps []int
	var seen []float64
	res, err := (&Command{Cmd: quadratic}).Run(context.Background(), Trial{Number: 4, Params: map[string]any{"x": 1.5}},
		func(step int, m map[string]float64) bool {
			steps = append(steps, step)
			seen = append(seen, m["score"])
			return false
		})
	if err != nil {
		t.Fatal(err)
	}
	if res["score"] != 2.25 || res["flops"] != 1e9 || res["note"] != "ok" {
		t.Errorf("result %v", res)
	}
	if len(steps) != 3 || seen[0] != 5.25 || seen[2] != 3.25 {
		t.Errorf("reports %v %v", steps, seen)
	}
}

func TestCommandFailures(t *testing.T) {
	cases := []struct{ cmd, want string }{
		{"echo oops >&2; exit 3", "exit status 3: oops"},
		{"echo '{\"score\": 1}'; kill -9 $$", "signal: killed"},
		{"echo not json", "not a JSON object"},
		{"true", "no result line"},
		{`echo '{"error": "diverged", "score": NaN}'`, "diverged"},
		{"/nonexistent/program", "exit status 127"},
	}
	for _, c := range cases {
		_, err := (&Command{Cmd: c.cmd}).Run(context.Background(), Trial{}, nil)
		var f *Failure
		if !errors.As(err, &f) || !strings.Contains(f.Reason, c.want) {
			t.Errorf("%q: error %v, want a Failure containing %q", c.cmd, err, c.want)
		}
	}
	// NaN results are parsed (the runner fails the trial on them).
	res, err := (&Command{Cmd: `echo '{"score": NaN}'`}).Run(context.Background(), Trial{}, nil)
	if err != nil || res["score"] == nil {
		t.Errorf("NaN result: %v %v", res, err)
	}
}

// A pruned trial's process group gets SIGTERM; a trap shows it arrived.
func TestCommandPrunedGetsSIGTERM(t *testing.T) {
	dir := t.TempDir()
	cmd := `trap 'echo terminated > ` + dir + `/got; exit 0' TERM
i=0; while true; do echo "{\"step\": $i, \"intermediate\": {\"score\": 1}}"; i=$((i+1)); sleep 0.05; done`
	start := time.Now()
	_, err := (&Command{Cmd: cmd, KillGrace: 5 * time.Second}).Run(context.Background(), Trial{}, func(step int, _ map[string]float64) bool {
		return step >= 2
	})
	if !errors.Is(err, ErrPruned) {
		t.Fatalf("err = %v, want ErrPruned", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Error("the command was not stopped by SIGTERM")
	}
	if got := readFile(t, dir+"/got"); got != "terminated\n" {
		t.Errorf("trap output %q", got)
	}
}

func TestCommandInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := (&Command{Cmd: "sleep 30"}).Run(ctx, Trial{}, nil)
	var f *Failure
	if !errors.As(err, &f) || !strings.Contains(f.Reason, "interrupted") {
		t.Errorf("err = %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The kernel's accounting of the command (its children included) reaches
// the result with codecarbon's energy estimate; what the command reports
// itself wins.
func TestCommandUsageAndEnergy(t *testing.T) {
	// awk, a child of the shell, holds a 60 MB string and loops for CPU time.
	burn := `awk 'BEGIN { s = "x"; while (length(s) < 6e7) s = s s; for (i = 0; i < 1000000; i++) x += i; print "{\"score\": " length(s) / 1e8 "}" }'`
	c := &Command{Cmd: burn, Energy: energy.Options{CarbonIntensity: 100, CPUPower: 50}}
	res, err := c.Run(context.Background(), Trial{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cpu, _ := res["cpu_seconds"].(float64)
	wall, _ := res["wall_seconds"].(float64)
	rss, _ := res["peak_rss_bytes"].(float64)
	kwh, _ := res["energy_kwh"].(float64)
	if res["score"] != 0.671089 || cpu <= 0 || wall <= 0 || rss < 60e6 {
		t.Fatalf("result %v", res)
	}
	want := energy.Process(cpu, wall, int64(rss), 50, runtime.NumCPU(), 100)
	if math.Abs(kwh-want.EnergyKWh) > 1e-15 || res["emissions_kg"] != want.EmissionsKg || res["energy_method"] != want.Method {
		t.Errorf("energy %v kWh, %v kg, %v; want %+v", kwh, res["emissions_kg"], res["energy_method"], want)
	}
	res, err = (&Command{Cmd: `echo '{"score": 1, "energy_kwh": 0.5}'`}).Run(context.Background(), Trial{}, nil)
	if err != nil || res["energy_kwh"] != 0.5 {
		t.Errorf("the command's own energy_kwh was replaced: %v %v", res, err)
	}
}
