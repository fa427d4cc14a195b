// Package objective runs one trial of a study: it turns parameters into
// metric values. The study runner sees only the Objective interface, so the
// built-in fine-tune-and-evaluate objective and an external command (any
// language, DESIGN.md's JSON line protocol) plug in alike.
package objective

import (
	"context"
	"errors"
	"fmt"
)

// Trial is what an objective is given.
type Trial struct {
	Number int            `json:"trial"`
	Params map[string]any `json:"params"` // external values: float64, int64, or the categorical choice
}

// ReportFunc records the metrics reached at a step (e.g. validation nDCG
// after an epoch). It returns true when the trial should stop: the pruner
// decided it will not beat the others.
type ReportFunc func(step int, metrics map[string]float64) (prune bool)

// Result is what a finished trial produced: every key of the result object,
// numbers as float64. The runner takes the objectives' metrics from it and
// keeps the rest as user attributes.
type Result map[string]any

// Objective runs trials. Run returns ErrPruned when report asked it to
// stop, a *Failure when the trial failed (the study goes on), and other
// errors only for problems that should stop the study.
type Objective interface {
	Run(ctx context.Context, t Trial, report ReportFunc) (Result, error)
}

// ErrPruned means the trial stopped because the pruner said so.
var ErrPruned = errors.New("trial pruned")

// Failure is a failed trial with the reason stored alongside it.
type Failure struct {
	Reason string
}

func (f *Failure) Error() string { return "trial failed: " + f.Reason }

// Failf builds a *Failure.
func Failf(format string, a ...any) error { return &Failure{Reason: fmt.Sprintf(format, a...)} }

// Func adapts a Go function into an Objective (tests, small studies).
type Func func(ctx context.Context, t Trial, report ReportFunc) (Result, error)

// Run implements Objective.
func (f Func) Run(ctx context.Context, t Trial, report ReportFunc) (Result, error) {
	return f(ctx, t, report)
}
