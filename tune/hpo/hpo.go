// Package hpo is ragtune's hyperparameter search engine: search spaces,
// samplers (random, Sobol, TPE, NSGA-II), pruners, importance, and studies
// kept in Optuna's own storage schema. It knows nothing of training; an
// objective is anything that turns parameters into metric values.
package hpo

import "time"

// Direction of one objective.
type Direction int

const (
	Minimize Direction = 1 // Optuna's StudyDirection.MINIMIZE
	Maximize Direction = 2 // Optuna's StudyDirection.MAXIMIZE
)

// TrialState uses Optuna's TrialState names (stored as their upper-case names).
type TrialState int

const (
	Running TrialState = iota
	Complete
	Pruned
	Fail
	Waiting
)

var stateNames = [...]string{"RUNNING", "COMPLETE", "PRUNED", "FAIL", "WAITING"}

func (s TrialState) String() string { return stateNames[s] }

// IsFinished reports whether the trial will not change any more.
func (s TrialState) IsFinished() bool { return s == Complete || s == Pruned || s == Fail }

// Distribution is a parameter's domain. Samplers work on the internal
// representation (a float64: the value itself for numbers, the choice index
// for categoricals), exactly as Optuna stores param_value.
type Distribution interface {
	// ToExternal turns an internal value into what the objective sees
	// (float64, int64, or the categorical choice).
	ToExternal(internal float64) any
	// ToInternal is the inverse of ToExternal; it fails for values outside the domain.
	ToInternal(external any) (float64, error)
	// Contains reports whether an internal value lies in the domain.
	Contains(internal float64) bool
	// Single reports whether the domain holds one value only.
	Single() bool
	// JSON is Optuna's distribution_json for this distribution.
	JSON() string
}

// FloatDistribution mirrors optuna.distributions.FloatDistribution.
type FloatDistribution struct {
	Low, High float64
	Log       bool
	Step      float64 // 0 means continuous
}

// IntDistribution mirrors optuna.distributions.IntDistribution.
type IntDistribution struct {
	Low, High int64
	Log       bool
	Step      int64 // at least 1
}

// CategoricalDistribution mirrors optuna.distributions.CategoricalDistribution.
// Choices are JSON scalars: nil, bool, float64, int64 or string.
type CategoricalDistribution struct {
	Choices []any
}

// Param is one named dimension of a search space.
type Param struct {
	Name string
	Dist Distribution
}

// Space is an ordered search space (order fixes Sobol dimensions and reports).
type Space []Param

// FrozenTrial is a trial as storage keeps it.
type FrozenTrial struct {
	ID             int64 // storage id (trials.trial_id)
	Number         int   // 0-based, unique within the study
	State          TrialState
	Values         []float64 // one per objective when Complete
	Params         map[string]any
	InternalParams map[string]float64
	Distributions  map[string]Distribution
	Intermediate   map[int]float64 // step -> value of the main objective
	UserAttrs      map[string]any
	SystemAttrs    map[string]any
	Start, End     time.Time
	Heartbeat      time.Time
}

// SuggestRequest is what a sampler sees when asked for a trial's parameters.
type SuggestRequest struct {
	Trials     []FrozenTrial // every trial of the study so far, any state, by number
	Directions []Direction
	Space      Space
	Number     int   // the number of the trial being sampled
	Seed       int64 // the study's sampler seed
}

// Sampler proposes internal parameter values for a new trial.
type Sampler interface {
	Name() string
	Suggest(req SuggestRequest) (map[string]float64, error)
}

// PruneRequest is what a pruner sees after a trial reports an intermediate value.
type PruneRequest struct {
	Trials     []FrozenTrial
	Directions []Direction
	Trial      FrozenTrial // the running trial, with its intermediate values so far
	Step       int         // the step just reported
}

// Pruner decides whether a running trial should stop early.
type Pruner interface {
	Prune(req PruneRequest) bool
}
