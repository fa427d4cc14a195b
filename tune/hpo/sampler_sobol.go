package hpo

import "math/rand/v2"

// SobolSampler is Optuna 3.1's QMCSampler(qmc_type="sobol") for a space
// known in advance:
//
//   - Unscrambled by default, so every worker walks one shared sequence;
//     with Scramble the sequence gets a seeded LMS+shift scramble.
//   - Trial 0 is drawn by the independent RandomSampler (in Optuna the first
//     trial comes before any search space is known); trial n ≥ 1 takes
//     Sobol point n−1, so point 0, the lower corner of the space, is not
//     skipped. Optuna counts points in a study attribute that workers race
//     on; deriving the index from the trial number gives the same sequence
//     for a sequential study and distinct points under concurrency.
//   - Numerical parameters take one dimension each, in the space's order.
//     Categoricals are drawn by the independent sampler, as in Optuna,
//     unless IncludeCategorical gives them dimensions too.
//
// Safe for concurrent use.
type SobolSampler struct {
	Scramble           bool
	IncludeCategorical bool
	seed               int64
	independent        *RandomSampler
}

// NewSobolSampler returns an unscrambled SobolSampler; seed drives the
// independent sampler (and the scramble when Scramble is set).
func NewSobolSampler(seed int64) *SobolSampler {
	return &SobolSampler{seed: seed, independent: NewRandomSampler(seed)}
}

// Name implements Sampler.
func (s *SobolSampler) Name() string { return "sobol" }

// Suggest implements Sampler.
func (s *SobolSampler) Suggest(req SuggestRequest) (map[string]float64, error) {
	all, err := dimsOf(req.Space)
	if err != nil {
		return nil, err
	}
	if req.Number <= 0 {
		return s.independent.sample(req, all, nil), nil
	}
	var qmc []dim
	for _, d := range all {
		if !d.single && (d.kind != dimCategorical || s.IncludeCategorical) {
			qmc = append(qmc, d)
		}
	}
	params := make(map[string]float64, len(all))
	if len(qmc) > 0 {
		seq, err := newSobolSequence(len(qmc))
		if err != nil {
			return nil, err
		}
		if s.Scramble {
			// One scramble per study: it depends on the seeds only.
			seq.scramble(rand.New(rand.NewPCG(uint64(s.seed), splitmix(uint64(req.Seed)^streamSobolScramble))))
		}
		u := make([]float64, len(qmc))
		seq.point(uint64(req.Number-1)%(1<<sobolBits), u)
		for i, d := range qmc {
			params[d.name] = d.fromUnit(u[i])
		}
	}
	return s.independent.sample(req, all, params), nil
}
