package hpo

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// NewSampler builds a sampler by name, as a sweep file names it:
//
//	random                  RandomSampler
//	sobol (alias qmc)       SobolSampler; opts: scramble (bool), include_categorical (bool)
//	tpe (alias motpe)       TPESampler (multi-objective studies get MOTPE); opts: see TPEOptions
//	nsga2 (alias nsgaii)    NSGAIISampler; opts: see NSGAIIOptions
//
// Unknown names and options are errors. The sampler returned never proposes
// parameters identical to those of a COMPLETE, PRUNED, RUNNING or WAITING
// trial when an unused point exists (see NoDuplicates).
func NewSampler(name string, seed int64, opts map[string]any) (Sampler, error) {
	s, err := newPlainSampler(name, seed, opts)
	if err != nil {
		return nil, err
	}
	return NoDuplicates(s, seed), nil
}

// newPlainSampler is NewSampler without the duplicate guard.
func newPlainSampler(name string, seed int64, opts map[string]any) (Sampler, error) {
	o := optionReader{what: "sampler " + name, opts: opts}
	var s Sampler
	switch strings.ToLower(name) {
	case "random":
		s = NewRandomSampler(seed)
	case "sobol", "qmc":
		q := NewSobolSampler(seed)
		q.Scramble = o.boolean("scramble", false)
		q.IncludeCategorical = o.boolean("include_categorical", false)
		s = q
	case "tpe", "motpe":
		t := DefaultTPEOptions()
		t.NStartupTrials = o.integer("n_startup_trials", t.NStartupTrials, 0)
		t.NEICandidates = o.integer("n_ei_candidates", t.NEICandidates, 1)
		t.PriorWeight = o.float("prior_weight", t.PriorWeight)
		t.ConsiderPrior = o.boolean("consider_prior", t.ConsiderPrior)
		t.ConsiderMagicClip = o.boolean("consider_magic_clip", t.ConsiderMagicClip)
		t.ConsiderEndpoints = o.boolean("consider_endpoints", t.ConsiderEndpoints)
		t.Multivariate = o.boolean("multivariate", t.Multivariate)
		t.ConstantLiar = o.boolean("constant_liar", t.ConstantLiar)
		if o.err == nil && t.PriorWeight <= 0 {
			o.err = fmt.Errorf("sampler %s: prior_weight must be > 0", name)
		}
		s = NewTPESampler(seed, t)
	case "nsga2", "nsgaii":
		n := DefaultNSGAIIOptions()
		n.PopulationSize = o.integer("population_size", n.PopulationSize, 2)
		n.MutationProb = o.float("mutation_prob", n.MutationProb)
		n.CrossoverProb = o.float("crossover_prob", n.CrossoverProb)
		n.SwappingProb = o.float("swapping_prob", n.SwappingProb)
		s = NewNSGAIISampler(seed, n)
	default:
		return nil, fmt.Errorf("unknown sampler %q (want random, sobol, tpe or nsga2)", name)
	}
	if err := o.finish(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewPruner builds a pruner by name:
//
//	median                                   MedianPruner; opts: n_startup_trials, n_warmup_steps, interval_steps, n_min_trials
//	percentile                               PercentilePruner; opts as median plus percentile (required)
//	successive_halving (aliases sha, asha)   SuccessiveHalvingPruner; opts: min_resource ("auto" or int), reduction_factor, min_early_stopping_rate, bootstrap_count
//	none (alias nop)                         never prunes
func NewPruner(name string, opts map[string]any) (Pruner, error) {
	o := optionReader{what: "pruner " + name, opts: opts}
	var p Pruner
	switch strings.ToLower(name) {
	case "median", "percentile":
		q := NewMedianPruner()
		if strings.EqualFold(name, "percentile") {
			q.Percentile = o.float("percentile", math.NaN())
			if o.err == nil && (math.IsNaN(q.Percentile) || q.Percentile < 0 || q.Percentile > 100) {
				o.err = fmt.Errorf("pruner percentile: percentile must be in [0, 100]")
			}
		}
		q.NStartupTrials = o.integer("n_startup_trials", q.NStartupTrials, 0)
		q.NWarmupSteps = o.integer("n_warmup_steps", q.NWarmupSteps, 0)
		q.NWarmupSteps = o.integer("warmup_steps", q.NWarmupSteps, 0)
		q.IntervalSteps = o.integer("interval_steps", q.IntervalSteps, 1)
		q.NMinTrials = o.integer("n_min_trials", q.NMinTrials, 1)
		p = q
	case "successive_halving", "sha", "asha":
		q := NewSuccessiveHalvingPruner()
		if v, ok := o.take("min_resource"); ok {
			if s, isStr := v.(string); !isStr || s != "auto" {
				q.MinResource = o.asInt("min_resource", v, 1)
			}
		}
		q.ReductionFactor = o.integer("reduction_factor", q.ReductionFactor, 2)
		q.MinEarlyStoppingRate = o.integer("min_early_stopping_rate", q.MinEarlyStoppingRate, 0)
		q.BootstrapCount = o.integer("bootstrap_count", q.BootstrapCount, 0)
		if o.err == nil && q.BootstrapCount > 0 && q.MinResource == 0 {
			o.err = fmt.Errorf("pruner %s: bootstrap_count > 0 needs an explicit min_resource", name)
		}
		p = q
	case "none", "nop":
		p = NopPruner{}
	default:
		return nil, fmt.Errorf("unknown pruner %q (want median, percentile, successive_halving or none)", name)
	}
	if err := o.finish(); err != nil {
		return nil, err
	}
	return p, nil
}

// NopPruner never prunes.
type NopPruner struct{}

// Prune implements Pruner.
func (NopPruner) Prune(PruneRequest) bool { return false }

// optionReader reads typed options out of a sweep file's map, remembering the
// first error and which keys were used so unknown keys can be reported.
type optionReader struct {
	what string
	opts map[string]any
	used map[string]bool
	err  error
}

func (o *optionReader) take(key string) (any, bool) {
	if o.used == nil {
		o.used = map[string]bool{}
	}
	o.used[key] = true
	v, ok := o.opts[key]
	return v, ok
}

func (o *optionReader) boolean(key string, def bool) bool {
	v, ok := o.take(key)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool && o.err == nil {
		o.err = fmt.Errorf("%s: option %s must be true or false, not %v", o.what, key, v)
	}
	return b
}

func (o *optionReader) float(key string, def float64) float64 {
	v, ok := o.take(key)
	if !ok {
		return def
	}
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	if o.err == nil {
		o.err = fmt.Errorf("%s: option %s must be a number, not %v", o.what, key, v)
	}
	return def
}

func (o *optionReader) integer(key string, def, least int) int {
	v, ok := o.take(key)
	if !ok {
		return def
	}
	return o.asInt(key, v, least)
}

func (o *optionReader) asInt(key string, v any, least int) int {
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			o.fail(key, v, least)
			return least
		}
		n = int(x)
	default:
		o.fail(key, v, least)
		return least
	}
	if n < least {
		o.fail(key, v, least)
		return least
	}
	return n
}

func (o *optionReader) fail(key string, v any, least int) {
	if o.err == nil {
		o.err = fmt.Errorf("%s: option %s must be an integer ≥ %d, not %v", o.what, key, least, v)
	}
}

// finish reports the first bad value, else the first unknown key.
func (o *optionReader) finish() error {
	if o.err != nil {
		return o.err
	}
	var unknown []string
	for k := range o.opts {
		if !o.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%s: unknown option %q", o.what, unknown[0])
	}
	return nil
}
