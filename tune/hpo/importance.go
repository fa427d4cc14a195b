package hpo

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// ImportanceOptions configure both evaluators; the defaults are Optuna's
// (64 trees, max depth 64, min_samples_split 2, min_samples_leaf 1).
type ImportanceOptions struct {
	NTrees, MaxDepth, MinSamplesSplit, MinSamplesLeaf int
	Seed                                              int64
	Objective                                         int // which objective value is the target
}

// DefaultImportanceOptions returns Optuna's forest settings with seed 0.
func DefaultImportanceOptions() ImportanceOptions {
	return ImportanceOptions{NTrees: 64, MaxDepth: 64, MinSamplesSplit: 2, MinSamplesLeaf: 1}
}

// ParamImportance is one parameter's importance. Importance is normalized
// over parameters to sum to 1 (what Optuna's get_param_importances
// returns); Fraction is fANOVA's raw share of the objective's variance.
type ParamImportance struct {
	Name       string
	Importance float64
	Fraction   float64
}

// PairImportance is the share of the objective's variance explained by the
// interaction of two parameters beyond their individual effects.
type PairImportance struct {
	A, B     string
	Fraction float64
}

// Importances are sorted most important first.
type Importances struct {
	Params []ParamImportance
	Pairs  []PairImportance // fANOVA only
}

// FanovaImportance is functional ANOVA over a random forest (Hutter et al.
// 2014, as Optuna's FanovaImportanceEvaluator): for each tree, the variance
// of the prediction over the search space is split into the variance of its
// marginal over each parameter (main effects) and over each pair (less the
// two main effects: interactions); shares are averaged over trees.
//
// Data: COMPLETE trials with every parameter of space and a finite target.
// Numbers enter in raw scale (even log ones) over [low, high], as in Optuna.
// Categoricals are one column of choice indices where each choice owns a
// unit-width cell, so marginals weight choices equally (Optuna one-hot
// encodes them instead). Parameters with a single value get 0.
func FanovaImportance(trials []FrozenTrial, space Space, opt ImportanceOptions) (*Importances, error) {
	data, err := importanceData(trials, space, opt)
	if err != nil {
		return nil, err
	}
	return fanova(data, fitForest(data.x, data.y, data.forest))
}

// ForestImportances is FanovaImportance and MeanDecreaseImpurity from one
// forest: both evaluators grow the same forest from the same options, so
// a caller that wants both pays for it once.
func ForestImportances(trials []FrozenTrial, space Space, opt ImportanceOptions) (fa, mdi *Importances, err error) {
	data, err := importanceData(trials, space, opt)
	if err != nil {
		return nil, nil, err
	}
	trees := fitForest(data.x, data.y, data.forest)
	if fa, err = fanova(data, trees); err != nil {
		return nil, nil, err
	}
	return fa, meanDecrease(data, trees), nil
}

func fanova(data *importanceInput, trees []regressionTree) (*Importances, error) {
	nf := len(data.names)
	main := make([]float64, nf)
	pair := make([][]float64, nf)
	for i := range pair {
		pair[i] = make([]float64, nf)
	}
	used := 0
	for _, t := range trees {
		leaves := t.leaves(data.bounds)
		total := boxVariance(leaves, data.bounds)
		if total <= 0 {
			continue
		}
		used++
		v1 := make([]float64, nf)
		for f := range nf {
			v1[f] = marginalVariance1(t, leaves, data.bounds, f)
			main[f] += v1[f] / total
		}
		for a := range nf {
			for b := a + 1; b < nf; b++ {
				v := marginalVariance2(t, leaves, data.bounds, a, b) - v1[a] - v1[b]
				pair[a][b] += math.Max(v, 0) / total
			}
		}
	}
	if used == 0 {
		return nil, errors.New("importance: the objective does not vary across the trials")
	}
	out := &Importances{}
	for f := range nf {
		out.Params = append(out.Params, ParamImportance{Name: data.names[f], Fraction: main[f] / float64(used)})
		for b := f + 1; b < nf; b++ {
			out.Pairs = append(out.Pairs, PairImportance{A: data.names[f], B: data.names[b], Fraction: pair[f][b] / float64(used)})
		}
	}
	out.finish(data.constant)
	return out, nil
}

// MeanDecreaseImpurity is scikit-learn's feature_importances_ over the same
// forest: each tree's impurity decreases per feature, normalized per tree,
// averaged over trees (Optuna's MeanDecreaseImpurityImportanceEvaluator).
func MeanDecreaseImpurity(trials []FrozenTrial, space Space, opt ImportanceOptions) (*Importances, error) {
	data, err := importanceData(trials, space, opt)
	if err != nil {
		return nil, err
	}
	return meanDecrease(data, fitForest(data.x, data.y, data.forest)), nil
}

func meanDecrease(data *importanceInput, trees []regressionTree) *Importances {
	nf := len(data.names)
	acc := make([]float64, nf)
	for _, t := range trees {
		per := make([]float64, nf)
		sum := 0.0
		for _, nd := range t.nodes {
			if nd.feature >= 0 {
				per[nd.feature] += nd.decrease
				sum += nd.decrease
			}
		}
		if sum > 0 {
			for f := range per {
				acc[f] += per[f] / sum
			}
		}
	}
	out := &Importances{}
	for f := range nf {
		out.Params = append(out.Params, ParamImportance{Name: data.names[f], Fraction: acc[f] / float64(len(trees))})
	}
	out.finish(data.constant)
	return out
}

// finish adds the single-valued parameters, normalizes and sorts.
func (im *Importances) finish(constant []string) {
	for _, name := range constant {
		im.Params = append(im.Params, ParamImportance{Name: name})
	}
	sum := 0.0
	for _, p := range im.Params {
		sum += p.Fraction
	}
	for i := range im.Params {
		if sum > 0 {
			im.Params[i].Importance = im.Params[i].Fraction / sum
		} else {
			im.Params[i].Importance = 1 / float64(len(im.Params))
		}
	}
	sort.SliceStable(im.Params, func(a, b int) bool { return im.Params[a].Importance > im.Params[b].Importance })
	sort.SliceStable(im.Pairs, func(a, b int) bool { return im.Pairs[a].Fraction > im.Pairs[b].Fraction })
}

type importanceInput struct {
	names    []string
	constant []string
	bounds   [][2]float64
	x        [][]float64
	y        []float64
	forest   forestOptions
}

func importanceData(trials []FrozenTrial, space Space, opt ImportanceOptions) (*importanceInput, error) {
	dims, err := dimsOf(space)
	if err != nil {
		return nil, err
	}
	in := &importanceInput{forest: forestOptions{
		nTrees: max(opt.NTrees, 1), maxDepth: max(opt.MaxDepth, 1),
		minSamplesSplit: max(opt.MinSamplesSplit, 2), minSamplesLeaf: max(opt.MinSamplesLeaf, 1), seed: opt.Seed,
	}}
	var active []dim
	for _, d := range dims {
		if d.single {
			in.constant = append(in.constant, d.name)
			continue
		}
		active = append(active, d)
		in.names = append(in.names, d.name)
		if d.kind == dimCategorical {
			in.bounds = append(in.bounds, [2]float64{-0.5, float64(d.choices) - 0.5})
		} else {
			in.bounds = append(in.bounds, [2]float64{d.low, d.high})
		}
	}
	if len(active) == 0 {
		return nil, errors.New("importance: no parameter takes more than one value")
	}
	for i := range trials {
		t := &trials[i]
		if t.State != Complete || opt.Objective >= len(t.Values) {
			continue
		}
		y := t.Values[opt.Objective]
		if math.IsNaN(y) || math.IsInf(y, 0) {
			continue
		}
		row := make([]float64, len(active))
		ok := true
		for k, d := range active {
			v, has := t.InternalParams[d.name]
			if !has || v < in.bounds[k][0] || v > in.bounds[k][1] {
				ok = false
				break
			}
			row[k] = v
		}
		if ok {
			in.x = append(in.x, row)
			in.y = append(in.y, y)
		}
	}
	if len(in.y) < 2 {
		return nil, fmt.Errorf("importance: %d usable COMPLETE trials; need at least 2", len(in.y))
	}
	return in, nil
}

// boxVariance is the variance of a tree's prediction over the whole space
// (leaf values weighted by cell volume).
func boxVariance(leaves []leafBox, bounds [][2]float64) float64 {
	w := make([]float64, len(leaves))
	v := make([]float64, len(leaves))
	for i, l := range leaves {
		w[i] = cellFraction(l, bounds, -1, -1)
		v[i] = l.value
	}
	return weightedVariance(v, w)
}

// cellFraction is the leaf cell's share of the space's volume, leaving out
// features skipA and skipB.
func cellFraction(l leafBox, bounds [][2]float64, skipA, skipB int) float64 {
	f := 1.0
	for k, b := range bounds {
		if k == skipA || k == skipB {
			continue
		}
		f *= (l.high[k] - l.low[k]) / (b[1] - b[0])
	}
	return f
}

// marginalVariance1 is the variance over feature f of the tree's prediction
// averaged over every other feature: piecewise constant between the tree's
// thresholds on f.
func marginalVariance1(t regressionTree, leaves []leafBox, bounds [][2]float64, f int) float64 {
	pts := t.splitPoints(f, bounds[f])
	cells := make([]float64, len(pts)) // difference array over cells
	for _, l := range leaves {
		a, _ := slices.BinarySearch(pts, l.low[f])
		b, _ := slices.BinarySearch(pts, l.high[f])
		c := l.value * cellFraction(l, bounds, f, -1)
		cells[a] += c
		cells[b] -= c
	}
	v := make([]float64, len(pts)-1)
	w := make([]float64, len(pts)-1)
	run := 0.0
	for i := range v {
		run += cells[i]
		v[i], w[i] = run, pts[i+1]-pts[i]
	}
	return weightedVariance(v, w)
}

// marginalVariance2 is the same over the pair of features (a, b), on the
// grid of both features' thresholds.
func marginalVariance2(t regressionTree, leaves []leafBox, bounds [][2]float64, a, b int) float64 {
	pa, pb := t.splitPoints(a, bounds[a]), t.splitPoints(b, bounds[b])
	na, nb := len(pa), len(pb)
	diff := make([]float64, na*nb)
	for _, l := range leaves {
		a0, _ := slices.BinarySearch(pa, l.low[a])
		a1, _ := slices.BinarySearch(pa, l.high[a])
		b0, _ := slices.BinarySearch(pb, l.low[b])
		b1, _ := slices.BinarySearch(pb, l.high[b])
		c := l.value * cellFraction(l, bounds, a, b)
		diff[a0*nb+b0] += c
		diff[a0*nb+b1] -= c
		diff[a1*nb+b0] -= c
		diff[a1*nb+b1] += c
	}
	for i := range na { // prefix sums turn the difference array into values
		for j := range nb {
			if i > 0 {
				diff[i*nb+j] += diff[(i-1)*nb+j]
			}
			if j > 0 {
				diff[i*nb+j] += diff[i*nb+j-1]
			}
			if i > 0 && j > 0 {
				diff[i*nb+j] -= diff[(i-1)*nb+j-1]
			}
		}
	}
	var v, w []float64
	for i := 0; i < na-1; i++ {
		for j := 0; j < nb-1; j++ {
			v = append(v, diff[i*nb+j])
			w = append(w, (pa[i+1]-pa[i])*(pb[j+1]-pb[j]))
		}
	}
	return weightedVariance(v, w)
}

func weightedVariance(v, w []float64) float64 {
	sw, mean := 0.0, 0.0
	for i := range v {
		sw += w[i]
		mean += w[i] * v[i]
	}
	if sw <= 0 {
		return 0
	}
	mean /= sw
	s := 0.0
	for i := range v {
		d := v[i] - mean
		s += w[i] * d * d
	}
	return s / sw
}
