package hpo

// RandomSampler draws every parameter independently and uniformly: numbers
// uniformly on their (log) scale, then rounded onto the step grid;
// categoricals uniformly among the choices. Each trial's draws depend only
// on the seeds and the trial number, so parallel workers with the same seed
// do not repeat one another. Safe for concurrent use.
type RandomSampler struct {
	seed int64
}

// NewRandomSampler returns a RandomSampler with the given seed.
func NewRandomSampler(seed int64) *RandomSampler { return &RandomSampler{seed: seed} }

// Name implements Sampler.
func (s *RandomSampler) Name() string { return "random" }

// Suggest implements Sampler.
func (s *RandomSampler) Suggest(req SuggestRequest) (map[string]float64, error) {
	dims, err := dimsOf(req.Space)
	if err != nil {
		return nil, err
	}
	return s.sample(req, dims, nil), nil
}

// sample fills every dim not already in params (which may be nil) with a
// uniform draw. Other samplers use it for their fallback parameters.
func (s *RandomSampler) sample(req SuggestRequest, dims []dim, params map[string]float64) map[string]float64 {
	if params == nil {
		params = make(map[string]float64, len(dims))
	}
	rng := trialRNG(s.seed, req.Seed, req.Number, streamRandom)
	for _, d := range dims {
		v := d.sampleUniform(rng) // drawn for every dim so the stream does not depend on which are filled
		if _, ok := params[d.name]; !ok {
			params[d.name] = v
		}
	}
	return params
}

// Random streams: each sampler that draws for a trial uses its own stream.
const (
	streamRandom uint64 = iota + 1
	streamTPE
	streamNSGA2
	streamSobolScramble
	streamDedupe
)
