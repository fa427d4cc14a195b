package hpo

import (
	"math/rand/v2"
	"slices"
)

// This file is the random forest behind parameter importance: regression
// trees grown like scikit-learn's RandomForestRegressor with its defaults
// (bootstrap samples, every feature tried at every split in random order,
// squared-error criterion, thresholds halfway between adjacent values).

type forestOptions struct {
	nTrees, maxDepth, minSamplesSplit, minSamplesLeaf int
	seed                                              int64
}

// treeNode is a split (feature ≥ 0) or a leaf (feature −1, value).
type treeNode struct {
	feature     int
	threshold   float64 // left: x ≤ threshold
	left, right int
	value       float64 // mean target of the node's samples
	decrease    float64 // weighted impurity decrease of the split (for MDI)
}

type regressionTree struct{ nodes []treeNode }

func fitForest(x [][]float64, y []float64, o forestOptions) []regressionTree {
	rng := rand.New(rand.NewPCG(uint64(o.seed), 0x666f72657374))
	trees := make([]regressionTree, o.nTrees)
	n := len(y)
	for t := range trees {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = rng.IntN(n)
		}
		g := treeGrower{x: x, y: y, o: o, rng: rng}
		g.grow(idx, 0)
		trees[t] = regressionTree{nodes: g.nodes}
	}
	return trees
}

type treeGrower struct {
	x     [][]float64
	y     []float64
	o     forestOptions
	rng   *rand.Rand
	nodes []treeNode
}

// grow adds the subtree for the samples idx and returns its node index.
func (g *treeGrower) grow(idx []int, depth int) int {
	sum, sumSq := 0.0, 0.0
	for _, i := range idx {
		sum += g.y[i]
		sumSq += g.y[i] * g.y[i]
	}
	n := float64(len(idx))
	node := len(g.nodes)
	g.nodes = append(g.nodes, treeNode{feature: -1, value: sum / n})
	sse := sumSq - sum*sum/n
	if depth >= g.o.maxDepth || len(idx) < g.o.minSamplesSplit || sse <= 1e-12*sumSq {
		return node
	}
	bestFeature, bestPos, bestGain := -1, 0, 0.0
	var bestOrder []int
	order := slices.Clone(idx)
	for _, f := range g.rng.Perm(len(g.x[0])) {
		slices.SortFunc(order, func(a, b int) int {
			if g.x[a][f] < g.x[b][f] {
				return -1
			}
			if g.x[a][f] > g.x[b][f] {
				return 1
			}
			return 0
		})
		left := 0.0
		for k := 1; k < len(order); k++ {
			left += g.y[order[k-1]]
			if g.x[order[k-1]][f] == g.x[order[k]][f] || k < g.o.minSamplesLeaf || len(order)-k < g.o.minSamplesLeaf {
				continue
			}
			nl, nr := float64(k), n-float64(k)
			right := sum - left
			// SSE reduction = left²/nl + right²/nr − sum²/n.
			if gain := left*left/nl + right*right/nr - sum*sum/n; gain > bestGain*(1+1e-12) {
				bestFeature, bestPos, bestGain = f, k, gain
				bestOrder = append(bestOrder[:0], order...)
			}
		}
	}
	if bestFeature < 0 {
		return node
	}
	lo, hi := g.x[bestOrder[bestPos-1]][bestFeature], g.x[bestOrder[bestPos]][bestFeature]
	threshold := lo + (hi-lo)/2
	if threshold == hi { // adjacent floats: keep x ≤ threshold for the left side only
		threshold = lo
	}
	l := g.grow(slices.Clone(bestOrder[:bestPos]), depth+1)
	r := g.grow(slices.Clone(bestOrder[bestPos:]), depth+1)
	g.nodes[node].feature, g.nodes[node].threshold = bestFeature, threshold
	g.nodes[node].left, g.nodes[node].right = l, r
	g.nodes[node].decrease = bestGain
	return node
}

// leafBox is a leaf's value and its cell, per feature, as [low, high).
type leafBox struct {
	value     float64
	low, high []float64
}

// leaves lists every leaf with its cell inside the given bounds.
func (t regressionTree) leaves(bounds [][2]float64) []leafBox {
	var out []leafBox
	lo := make([]float64, len(bounds))
	hi := make([]float64, len(bounds))
	for f, b := range bounds {
		lo[f], hi[f] = b[0], b[1]
	}
	var walk func(n int, lo, hi []float64)
	walk = func(n int, lo, hi []float64) {
		nd := t.nodes[n]
		if nd.feature < 0 {
			out = append(out, leafBox{value: nd.value, low: slices.Clone(lo), high: slices.Clone(hi)})
			return
		}
		f, th := nd.feature, nd.threshold
		if th > lo[f] {
			h := slices.Clone(hi)
			h[f] = min(hi[f], th)
			walk(nd.left, lo, h)
		}
		if th < hi[f] {
			l := slices.Clone(lo)
			l[f] = max(lo[f], th)
			walk(nd.right, l, hi)
		}
	}
	walk(0, lo, hi)
	return out
}

// splitPoints are the sorted distinct thresholds of feature f inside bounds,
// with the bounds at both ends.
func (t regressionTree) splitPoints(f int, b [2]float64) []float64 {
	pts := []float64{b[0], b[1]}
	for _, nd := range t.nodes {
		if nd.feature == f && nd.threshold > b[0] && nd.threshold < b[1] {
			pts = append(pts, nd.threshold)
		}
	}
	slices.Sort(pts)
	return slices.Compact(pts)
}
