package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// HeaderLines says in words what the study found: trial counts, the
// objectives, the best trial(s) and how they compare with the baselines the
// study recorded.
func HeaderLines(d *Data) []string {
	total := len(d.Trials)
	var counts []string
	for _, st := range []string{"COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"} {
		if n := d.Counts[st]; n > 0 || st == "COMPLETE" || st == "PRUNED" || st == "FAIL" {
			counts = append(counts, fmt.Sprintf("%d %s", n, map[string]string{
				"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}[st]))
		}
	}
	lines := []string{fmt.Sprintf("%d %s: %s.", total, plural(total, "trial", "trials"), strings.Join(counts, ", "))}
	var objs []string
	for i, m := range d.Metrics {
		objs = append(objs, d.Directions[i]+" "+m)
	}
	lines = append(lines, fmt.Sprintf("%s: %s.", plural(len(objs), "Objective", "Objectives"), strings.Join(objs, ", ")))
	byNumber := map[int]*TrialData{}
	for i := range d.Trials {
		byNumber[d.Trials[i].Number] = &d.Trials[i]
	}
	switch {
	case len(d.Best) == 0:
		lines = append(lines, "No trial has completed yet.")
	case len(d.Metrics) == 1:
		t := byNumber[d.Best[0]]
		test := ""
		if v, ok := number(t.Attrs["test_"+d.Metrics[0]]); ok {
			test = fmt.Sprintf(", test %s = %s", d.Metrics[0], num(&v))
		}
		lines = append(lines, fmt.Sprintf("Best trial: #%d, %s = %s%s%s.", t.Number, d.Metrics[0], num(t.Values[0]), test, paramText(t.Params)))
	default:
		var front []string
		for _, n := range d.Best {
			t := byNumber[n]
			var vals []string
			for i, m := range d.Metrics {
				vals = append(vals, m+" "+num(t.Values[i]))
			}
			front = append(front, fmt.Sprintf("#%d (%s)", n, strings.Join(vals, ", ")))
		}
		if len(front) > 6 {
			front = append(front[:6], fmt.Sprintf("and %d more", len(front)-6))
		}
		lines = append(lines, fmt.Sprintf("Pareto front: %d %s: %s.", len(d.Best), plural(len(d.Best), "trial", "trials"), strings.Join(front, "; ")))
	}
	lines = append(lines, baselineLines(d, byNumber)...)
	return lines
}

// baselineLines states the recorded baselines, one line per system (the
// base model, BM25, the base model fused with BM25) and source, and, where a
// system scores the main objective's metric, how the best trial compares.
func baselineLines(d *Data, byNumber map[int]*TrialData) []string {
	var best *float64
	if len(d.Best) > 0 && len(d.Metrics) == 1 {
		best = byNumber[d.Best[0]].Values[0]
	}
	type group struct {
		head   string
		scores []string
		main   *float64
	}
	var groups []*group
	byHead := map[string]*group{}
	for _, b := range d.Baselines {
		system, metric := b.System, b.Metric
		if m, ok := strings.CutPrefix(metric, "hybrid_"); ok {
			system, metric = system+" + BM25 (hybrid)", m
		}
		source := "recorded by the study"
		if b.Source != "study" {
			source = "recorded with " + b.Source
		}
		head := fmt.Sprintf("%s%s (%s)", strings.ToUpper(system[:1]), system[1:], source)
		g := byHead[head]
		if g == nil {
			g = &group{head: head}
			byHead[head] = g
			groups = append(groups, g)
		}
		g.scores = append(g.scores, fmt.Sprintf("%s = %s", metric, num(&b.Value)))
		if metric == b.Metric && len(d.Metrics) > 0 && metric == d.Metrics[0] {
			g.main = &b.Value
		}
	}
	var lines []string
	for _, g := range groups {
		line := fmt.Sprintf("%s: %s.", g.head, strings.Join(g.scores, ", "))
		if best != nil && g.main != nil {
			diff := *best - *g.main
			if d.Directions[0] == "minimize" {
				diff = -diff
			}
			switch {
			case diff > 0:
				line += fmt.Sprintf(" The best trial beats it on %s by %s.", d.Metrics[0], num(&diff))
			case diff < 0:
				diff = -diff
				line += fmt.Sprintf(" The best trial is %s worse on %s.", num(&diff), d.Metrics[0])
			default:
				line += " The best trial only equals it."
			}
		}
		lines = append(lines, line)
	}
	return lines
}

func paramText(params map[string]any) string {
	if len(params) == 0 {
		return ""
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := params[k]
		if f, ok := v.(float64); ok {
			v = num(&f)
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// num prints a score with four significant digits.
func num(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
