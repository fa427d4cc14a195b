package hpo

import (
	"math"
	"math/rand/v2"
	"sort"
)

// NSGAIIOptions are NSGAIISampler's settings; DefaultNSGAIIOptions gives
// Optuna 3.1's.
type NSGAIIOptions struct {
	PopulationSize int     // 50
	MutationProb   float64 // 0 means 1/max(1, #params)
	CrossoverProb  float64 // 0.9
	SwappingProb   float64 // 0.5 (uniform crossover)
}

// DefaultNSGAIIOptions are the defaults of Optuna 3.1's NSGAIISampler.
func DefaultNSGAIIOptions() NSGAIIOptions {
	return NSGAIIOptions{PopulationSize: 50, CrossoverProb: 0.9, SwappingProb: 0.5}
}

// NSGAIISampler is Optuna 3.1's NSGA-II sampler with uniform crossover.
//
// Generation 0 is random. Each later trial picks two parents by binary
// tournament (a random pair; the dominating one wins) from the parent
// population, with probability CrossoverProb crosses them uniformly (each
// parameter from either parent with probability SwappingProb), otherwise
// copies one random parent, and then redraws each parameter at random with
// probability MutationProb. The parent population of generation g+1 is the
// elite of generation g's COMPLETE trials and generation g's parents: whole
// non-domination fronts, the last cut by crowding distance.
//
// Generations: Optuna stores each trial's generation in the system attribute
// nsga2:generation and starts a new one once the current has
// PopulationSize COMPLETE trials. Samplers here do not write storage, so a
// trial's generation is that attribute when present (studies written by
// Optuna) and otherwise its trial number divided by PopulationSize: every
// worker derives the same generations, and failed or pruned trials make a
// generation smaller rather than longer. Safe for concurrent use.
type NSGAIISampler struct {
	opt    NSGAIIOptions
	seed   int64
	random *RandomSampler
}

// NewNSGAIISampler returns an NSGAIISampler.
func NewNSGAIISampler(seed int64, opt NSGAIIOptions) *NSGAIISampler {
	if opt.PopulationSize < 2 {
		opt.PopulationSize = 2
	}
	return &NSGAIISampler{opt: opt, seed: seed, random: NewRandomSampler(seed)}
}

// Name implements Sampler.
func (s *NSGAIISampler) Name() string { return "nsga2" }

// Suggest implements Sampler.
func (s *NSGAIISampler) Suggest(req SuggestRequest) (map[string]float64, error) {
	dims, err := dimsOf(req.Space)
	if err != nil {
		return nil, err
	}
	parents := s.parentPopulation(req, dims)
	if len(parents) < 2 {
		return s.random.sample(req, dims, nil), nil
	}
	rng := trialRNG(s.seed, req.Seed, req.Number, streamNSGA2)
	child := make(map[string]float64, len(dims))
	if rng.Float64() < s.opt.CrossoverProb {
		p0 := tournament(rng, parents, nil, req.Directions)
		p1 := tournament(rng, parents, p0, req.Directions)
		for _, d := range dims {
			src := p0
			if rng.Float64() < s.opt.SwappingProb {
				src = p1
			}
			child[d.name] = src.InternalParams[d.name]
		}
	} else {
		p := parents[rng.IntN(len(parents))]
		for _, d := range dims {
			child[d.name] = p.InternalParams[d.name]
		}
	}
	mutation := s.opt.MutationProb
	if mutation <= 0 {
		mutation = 1 / math.Max(1, float64(len(dims)))
	}
	for _, d := range dims {
		if rng.Float64() < mutation {
			delete(child, d.name) // redrawn by the random sampler below
		}
	}
	return s.random.sample(req, dims, child), nil
}

// generation of a trial: Optuna's attribute, else number / population size.
func (s *NSGAIISampler) generation(t *FrozenTrial) int {
	if v, ok := t.SystemAttrs["nsga2:generation"]; ok {
		if g, isNum := asFloat(v); isNum {
			return int(g)
		}
	}
	return t.Number / s.opt.PopulationSize
}

// parentPopulation is the elite population that breeds the requested
// trial's generation.
func (s *NSGAIISampler) parentPopulation(req SuggestRequest, dims []dim) []*FrozenTrial {
	current := req.Number / s.opt.PopulationSize
	byGen := map[int][]*FrozenTrial{}
	for i := range req.Trials {
		t := &req.Trials[i]
		if t.State != Complete || len(t.Values) != len(req.Directions) || !hasAll(t, dims) {
			continue
		}
		if g := s.generation(t); g < current {
			byGen[g] = append(byGen[g], t)
		}
	}
	var parents []*FrozenTrial
	for g := 0; g < current; g++ {
		pool := append(append([]*FrozenTrial(nil), byGen[g]...), parents...)
		parents = s.elite(pool, req.Directions)
	}
	return parents
}

// elite keeps PopulationSize trials: whole fronts, the last cut by crowding
// distance.
func (s *NSGAIISampler) elite(pool []*FrozenTrial, dirs []Direction) []*FrozenTrial {
	values := make([][]float64, len(pool))
	for i, t := range pool {
		values[i] = t.Values
	}
	ranks := NonDominatedRanks(values, dirs)
	var out []*FrozenTrial
	for rank := 0; len(out) < s.opt.PopulationSize; rank++ {
		var front []*FrozenTrial
		for i, r := range ranks {
			if r == rank {
				front = append(front, pool[i])
			}
		}
		if len(front) == 0 {
			break
		}
		if len(out)+len(front) < s.opt.PopulationSize {
			out = append(out, front...)
			continue
		}
		dist := crowdingDistance(front)
		order := make([]int, len(front))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return dist[order[a]] > dist[order[b]] })
		for _, i := range order[:s.opt.PopulationSize-len(out)] {
			out = append(out, front[i])
		}
	}
	return out
}

// crowdingDistance sums, per objective, the normalized gap between each
// trial's two neighbours (the extremes get +inf).
func crowdingDistance(front []*FrozenTrial) []float64 {
	dist := make([]float64, len(front))
	if len(front) == 0 {
		return dist
	}
	order := make([]int, len(front))
	for k := range front[0].Values {
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return front[order[a]].Values[k] < front[order[b]].Values[k] })
		lo, hi := front[order[0]].Values[k], front[order[len(order)-1]].Values[k]
		if lo == hi {
			continue
		}
		width := hi - lo
		for j, i := range order {
			prev, next := math.Inf(-1), math.Inf(1)
			if j > 0 {
				prev = front[order[j-1]].Values[k]
			}
			if j < len(order)-1 {
				next = front[order[j+1]].Values[k]
			}
			dist[i] += (next - prev) / width
		}
	}
	return dist
}

// tournament draws two candidates (other than exclude) and keeps the one
// that dominates, else the second, as Optuna does.
func tournament(rng *rand.Rand, pop []*FrozenTrial, exclude *FrozenTrial, dirs []Direction) *FrozenTrial {
	cands := pop
	if exclude != nil {
		cands = make([]*FrozenTrial, 0, len(pop))
		for _, t := range pop {
			if t != exclude {
				cands = append(cands, t)
			}
		}
	}
	a, b := cands[rng.IntN(len(cands))], cands[rng.IntN(len(cands))]
	if Dominates(a.Values, b.Values, dirs) {
		return a
	}
	return b
}

func hasAll(t *FrozenTrial, dims []dim) bool {
	for _, d := range dims {
		v, ok := t.InternalParams[d.name]
		if !ok || v < d.low || v > d.high {
			return false
		}
	}
	return true
}
