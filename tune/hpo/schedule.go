package hpo

import (
	"fmt"
	"strings"
)

// Stage is one step of a sampler schedule: Trials trials drawn by the sampler
// called Name (a NewSampler name), built with Options.
type Stage struct {
	Name    string
	Trials  int
	Options map[string]any
}

// Schedule chains samplers, as the original work's "Sobol for N trials, then
// TPE for M" did: [{sobol, 8}, {tpe, 12}].
//
// Counting rule: stage counts are totals for the study, in trials that count
// or may still count: COMPLETE and PRUNED trials plus RUNNING and WAITING
// ones other than the trial being sampled. FAILED trials do not count, so a
// failed Sobol trial is replaced by another Sobol trial; counting running
// trials keeps parallel workers from all starting in the first stage. This
// matches the runner, which continues a study until COMPLETE+PRUNED reaches
// Total(). Once the total is reached the last stage goes on (--n-trials asks
// for more).
type Schedule []Stage

// Total is the number of trials the schedule asks for.
func (s Schedule) Total() int {
	n := 0
	for _, st := range s {
		n += st.Trials
	}
	return n
}

// Validate checks that there is at least one stage and each has trials.
func (s Schedule) Validate() error {
	if len(s) == 0 {
		return fmt.Errorf("sampler schedule: no stages")
	}
	for i, st := range s {
		if st.Trials < 1 {
			return fmt.Errorf("sampler schedule: stage %d (%s) needs trials ≥ 1, has %d", i+1, st.Name, st.Trials)
		}
	}
	return nil
}

// ScheduleSampler dispatches each trial to the sampler of its stage. Safe for
// concurrent use when its stage samplers are (all built-in ones are).
type ScheduleSampler struct {
	stages   Schedule
	samplers []Sampler
}

// NewScheduleSampler builds every stage's sampler with NewSampler's names
// and options, behind one duplicate guard.
func NewScheduleSampler(s Schedule, seed int64) (Sampler, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	ss := &ScheduleSampler{stages: s}
	for i, st := range s {
		smp, err := newPlainSampler(st.Name, seed, st.Options)
		if err != nil {
			return nil, fmt.Errorf("sampler schedule: stage %d: %w", i+1, err)
		}
		ss.samplers = append(ss.samplers, smp)
	}
	return NoDuplicates(ss, seed), nil
}

// Name implements Sampler: "schedule(sobol:8,tpe:12)".
func (s *ScheduleSampler) Name() string {
	parts := make([]string, len(s.stages))
	for i, st := range s.stages {
		parts[i] = fmt.Sprintf("%s:%d", st.Name, st.Trials)
	}
	return "schedule(" + strings.Join(parts, ",") + ")"
}

// Suggest implements Sampler.
func (s *ScheduleSampler) Suggest(req SuggestRequest) (map[string]float64, error) {
	return s.samplers[s.StageFor(req.Trials, req.Number)].Suggest(req)
}

// StageFor is the index of the stage that samples trial number, given the
// study's trials (see Schedule for the counting rule).
func (s *ScheduleSampler) StageFor(trials []FrozenTrial, number int) int {
	counted := 0
	for i := range trials {
		t := &trials[i]
		if t.Number == number {
			continue
		}
		switch t.State {
		case Complete, Pruned, Running, Waiting:
			counted++
		}
	}
	end := 0
	for i, st := range s.stages {
		end += st.Trials
		if counted < end {
			return i
		}
	}
	return len(s.stages) - 1
}
