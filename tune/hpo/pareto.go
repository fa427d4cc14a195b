package hpo

import (
	"math"
	"sort"
)

// Dominates reports whether objective vector a Pareto-dominates b under the
// given directions: no worse in every objective and not identical (equal
// vectors do not dominate each other, as in Optuna).
func Dominates(a, b []float64, dirs []Direction) bool {
	better := false
	for i := range a {
		x, y := a[i], b[i]
		if i < len(dirs) && dirs[i] == Maximize {
			x, y = -x, -y
		}
		if x > y {
			return false
		}
		if x < y {
			better = true
		}
	}
	return better
}

// ParetoFront returns the COMPLETE trials that no other COMPLETE trial
// dominates, in trial-number order (Optuna's study.best_trials).
func ParetoFront(trials []FrozenTrial, dirs []Direction) []FrozenTrial {
	var done []FrozenTrial
	for _, t := range trials {
		if t.State == Complete && len(t.Values) == len(dirs) {
			done = append(done, t)
		}
	}
	ranks := NonDominatedRanks(objectiveMatrix(done), dirs)
	var front []FrozenTrial
	for i, t := range done {
		if ranks[i] == 0 {
			front = append(front, t)
		}
	}
	sort.SliceStable(front, func(i, j int) bool { return front[i].Number < front[j].Number })
	return front
}

// NonDominatedRanks is fast non-dominated sorting (Deb et al. 2002): rank 0
// is the Pareto front, rank 1 the front of what remains, and so on.
func NonDominatedRanks(values [][]float64, dirs []Direction) []int {
	n := len(values)
	dominatedBy := make([]int, n) // how many points dominate i
	dominates := make([][]int, n) // points that i dominates
	for i := range n {
		for j := i + 1; j < n; j++ {
			switch {
			case Dominates(values[i], values[j], dirs):
				dominates[i] = append(dominates[i], j)
				dominatedBy[j]++
			case Dominates(values[j], values[i], dirs):
				dominates[j] = append(dominates[j], i)
				dominatedBy[i]++
			}
		}
	}
	ranks := make([]int, n)
	var current []int
	for i := range n {
		if dominatedBy[i] == 0 {
			current = append(current, i)
		}
	}
	for rank := 0; len(current) > 0; rank++ {
		var next []int
		for _, i := range current {
			ranks[i] = rank
			for _, j := range dominates[i] {
				if dominatedBy[j]--; dominatedBy[j] == 0 {
					next = append(next, j)
				}
			}
		}
		current = next
	}
	return ranks
}

func objectiveMatrix(trials []FrozenTrial) [][]float64 {
	m := make([][]float64, len(trials))
	for i, t := range trials {
		m[i] = t.Values
	}
	return m
}

// Hypervolume is the volume dominated by points (all objectives minimized)
// and bounded by ref. Points not strictly better than ref in every
// objective add nothing. Exact: a sweep for two objectives, the WFG
// algorithm (While et al. 2012) beyond.
func Hypervolume(points [][]float64, ref []float64) float64 {
	var inside [][]float64
	for _, p := range points {
		ok := true
		for k := range ref {
			if !(p[k] < ref[k]) {
				ok = false
				break
			}
		}
		if ok {
			inside = append(inside, p)
		}
	}
	return wfg(inside, ref)
}

func wfg(points [][]float64, ref []float64) float64 {
	switch {
	case len(points) == 0:
		return 0
	case len(points) == 1:
		return boxVolume(points[0], ref)
	case len(ref) == 2:
		return hypervolume2D(points, ref)
	}
	sorted := append([][]float64(nil), points...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i][0] < sorted[j][0] })
	total := 0.0
	for i, p := range sorted {
		total += exclusiveVolume(p, sorted[i+1:], ref)
	}
	return total
}

// exclusiveVolume is the part of p's box that no point of rest dominates.
func exclusiveVolume(p []float64, rest [][]float64, ref []float64) float64 {
	v := boxVolume(p, ref)
	if len(rest) == 0 {
		return v
	}
	limited := make([][]float64, len(rest))
	for i, q := range rest {
		l := make([]float64, len(q))
		for k := range q {
			l[k] = math.Max(p[k], q[k])
		}
		limited[i] = l
	}
	return v - wfg(nondominatedOnly(limited), ref)
}

// nondominatedOnly drops points weakly dominated by another (minimization);
// of identical points one is kept.
func nondominatedOnly(points [][]float64) [][]float64 {
	var out [][]float64
	for i, p := range points {
		dominated := false
		for j, q := range points {
			if i == j {
				continue
			}
			weakly, equal := true, true
			for k := range p {
				if q[k] > p[k] {
					weakly = false
					break
				}
				if q[k] != p[k] {
					equal = false
				}
			}
			if weakly && (!equal || j < i) {
				dominated = true
				break
			}
		}
		if !dominated {
			out = append(out, p)
		}
	}
	return out
}

func boxVolume(p, ref []float64) float64 {
	v := 1.0
	for k := range ref {
		v *= ref[k] - p[k]
	}
	return v
}

func hypervolume2D(points [][]float64, ref []float64) float64 {
	s := append([][]float64(nil), points...)
	sort.Slice(s, func(i, j int) bool {
		if s[i][0] != s[j][0] {
			return s[i][0] < s[j][0]
		}
		return s[i][1] < s[j][1]
	})
	area, bestY := 0.0, ref[1]
	for _, p := range s {
		if p[1] < bestY {
			area += (ref[0] - p[0]) * (bestY - p[1])
			bestY = p[1]
		}
	}
	return area
}
