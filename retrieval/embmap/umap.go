package embmap

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// UMAPOptions are UMAP's knobs; zero values take umap-learn's defaults.
type UMAPOptions struct {
	// Neighbors is the neighbourhood size, the point itself included
	// (umap-learn's n_neighbors; default 15).
	Neighbors int
	// MinDist is how close points may sit in the map (default 0.1); Spread
	// is the scale of the map's clusters (default 1).
	MinDist, Spread float64
	// Epochs of the layout (default 500 up to 10,000 points, else 200).
	Epochs int
	// LearningRate is the initial step (default 1), decayed linearly to 0.
	LearningRate float64
	// NegativeRate is how many random points repel per attraction (default 5).
	NegativeRate int
	// Seed drives the initial noise and the negative samples.
	Seed uint64
	// RandomInit starts from uniform random points instead of the PCA map.
	RandomInit bool
	// Progress, when set, is told each stage's progress ("neighbours",
	// "layout").
	Progress func(stage string, done, total int)
}

func (o UMAPOptions) withDefaults(n int) UMAPOptions {
	if o.Neighbors <= 0 {
		o.Neighbors = 15
	}
	if o.Spread == 0 {
		o.Spread = 1
	}
	if o.MinDist == 0 {
		o.MinDist = 0.1
	}
	if o.Epochs <= 0 {
		o.Epochs = 500
		if n > 10000 {
			o.Epochs = 200
		}
	}
	if o.LearningRate == 0 {
		o.LearningRate = 1
	}
	if o.NegativeRate <= 0 {
		o.NegativeRate = 5
	}
	return o
}

// UMAP maps vectors to 2-D. The steps, after the paper: the k nearest
// neighbours of every point (exact, Euclidean; normalise the vectors first
// for cosine neighbours), the fuzzy simplicial set of the data (smooth kNN
// distances, fuzzy union), an initial map (PCA plus tiny noise, as
// umap-learn's init="pca", or random; each axis scaled to [0, 10]), then
// stochastic gradient descent on the fuzzy-set cross-entropy: each edge
// attracts its two ends as often as its weight says, and every attraction
// comes with NegativeRate repulsions from random points; the map's
// membership curve 1/(1 + a·d^(2b)) is fitted to MinDist and Spread.
func UMAP(vectors [][]float32, opts UMAPOptions) ([]Point, error) {
	flat, n, dim, err := flatten(vectors)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults(n)
	a, b, err := fitCurve(opts.Spread, opts.MinDist)
	if err != nil {
		return nil, err
	}
	if n < 3 {
		return make([]Point, n), nil // nothing to lay out
	}
	k := min(opts.Neighbors-1, n-1)
	if k < 1 {
		return nil, fmt.Errorf("embmap: UMAP needs at least 2 neighbours, got %d", opts.Neighbors)
	}
	var knnProgress func(done, total int)
	if opts.Progress != nil {
		knnProgress = func(done, total int) { opts.Progress("neighbours", done, total) }
	}
	edges := fuzzyGraph(exactKNN(flat, n, dim, k, knnProgress))
	rng := rand.New(rand.NewPCG(opts.Seed, 0x0a11ce))
	var coords []float64
	if opts.RandomInit {
		coords = make([]float64, 2*n)
		for i := range coords {
			coords[i] = rng.Float64()*20 - 10
		}
	} else if coords, err = pcaInit(vectors, rng); err != nil {
		return nil, err
	}
	rescale(coords)
	layout(coords, n, edges, a, b, opts, rng)
	out := make([]Point, n)
	for i := range out {
		out[i] = Point{coords[2*i], coords[2*i+1]}
	}
	return out, nil
}

// pcaInit is the PCA map scaled so its largest coordinate is 10, with
// Gaussian noise of 1e-4 that separates duplicate points (umap-learn's
// init="pca"; rescale then maps each axis to [0, 10]).
func pcaInit(vectors [][]float32, rng *rand.Rand) ([]float64, error) {
	p, err := PCA(vectors)
	if err != nil {
		return nil, err
	}
	var peak float64
	for _, q := range p.Points {
		peak = math.Max(peak, math.Max(math.Abs(q.X), math.Abs(q.Y)))
	}
	scale := 1.0
	if peak > 0 {
		scale = 10 / peak
	}
	coords := make([]float64, 2*len(p.Points))
	for i, q := range p.Points {
		coords[2*i] = q.X*scale + rng.NormFloat64()*1e-4
		coords[2*i+1] = q.Y*scale + rng.NormFloat64()*1e-4
	}
	return coords, nil
}

// rescale maps each axis of the initial map onto [0, 10], as umap-learn
// does before the layout (an axis with no spread is left alone).
func rescale(coords []float64) {
	for axis := range 2 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := axis; i < len(coords); i += 2 {
			lo, hi = math.Min(lo, coords[i]), math.Max(hi, coords[i])
		}
		if hi > lo {
			for i := axis; i < len(coords); i += 2 {
				coords[i] = 10 * (coords[i] - lo) / (hi - lo)
			}
		}
	}
}

// gradClip bounds each coordinate's step, as umap-learn does.
const gradClip = 4

// layout runs the SGD of the map in place. Edge e is sampled every
// maxWeight/weight epochs (weights under maxWeight/epochs never are), and
// brings NegativeRate negative samples per sample.
func layout(coords []float64, n int, edges []edge, a, b float64, opts UMAPOptions, rng *rand.Rand) {
	var maxW float64
	for _, e := range edges {
		maxW = math.Max(maxW, e.weight)
	}
	epochs := opts.Epochs
	kept := edges[:0:0]
	for _, e := range edges {
		if e.weight >= maxW/float64(epochs) {
			kept = append(kept, e)
		}
	}
	every := make([]float64, len(kept))    // epochs between samples
	next := make([]float64, len(kept))     // epoch of the next sample
	everyNeg := make([]float64, len(kept)) // epochs between negative samples
	nextNeg := make([]float64, len(kept))
	for i, e := range kept {
		every[i] = maxW / e.weight
		next[i] = every[i]
		everyNeg[i] = every[i] / float64(opts.NegativeRate)
		nextNeg[i] = everyNeg[i]
	}
	for epoch := range epochs {
		alpha := opts.LearningRate * (1 - float64(epoch)/float64(epochs))
		ep := float64(epoch)
		for i, e := range kept {
			if next[i] > ep {
				continue
			}
			j, o := int(e.from), int(e.to)
			dx, dy := coords[2*j]-coords[2*o], coords[2*j+1]-coords[2*o+1]
			d2 := dx*dx + dy*dy
			if d2 > 0 {
				// Attraction: gradient of log(1/(1 + a·d^(2b))).
				pb := powB(d2, b)
				c := -2 * a * b * (pb / d2) / (a*pb + 1)
				gx, gy := clip(c*dx)*alpha, clip(c*dy)*alpha
				coords[2*j] += gx
				coords[2*j+1] += gy
				coords[2*o] -= gx
				coords[2*o+1] -= gy
			}
			next[i] += every[i]
			negs := int((ep - nextNeg[i]) / everyNeg[i])
			for range negs {
				r := rng.IntN(n)
				if r == j {
					continue
				}
				dx, dy := coords[2*j]-coords[2*r], coords[2*j+1]-coords[2*r+1]
				d2 := dx*dx + dy*dy
				var gx, gy float64
				if d2 > 0 {
					// Repulsion: gradient of log(1 − 1/(1 + a·d^(2b))).
					c := 2 * b / ((0.001 + d2) * (a*powB(d2, b) + 1))
					gx, gy = clip(c*dx), clip(c*dy)
				} else {
					gx, gy = gradClip, gradClip
				}
				coords[2*j] += gx * alpha
				coords[2*j+1] += gy * alpha
			}
			nextNeg[i] += float64(negs) * everyNeg[i]
		}
		if opts.Progress != nil {
			opts.Progress("layout", epoch+1, epochs)
		}
	}
}

// powB is x^b for x > 0: exp(b·ln x) skips math.Pow's special cases, which
// the layout never meets and which made Pow most of its time.
func powB(x, b float64) float64 { return math.Exp(b * math.Log(x)) }

func clip(x float64) float64 {
	if x > gradClip {
		return gradClip
	}
	if x < -gradClip {
		return -gradClip
	}
	return x
}
