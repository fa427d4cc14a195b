package storage

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ragtune/ragtune/tune/hpo"
)

// benchStudy writes n COMPLETE trials with six mixed parameters, three
// intermediate values and two user attributes each (a typical tuning study).
func benchStudy(b *testing.B, url string, n int) (*Storage, Study) {
	b.Helper()
	s := openT(b, url)
	st, err := s.CreateStudy(ctx, "bench", []hpo.Direction{hpo.Maximize})
	if err != nil {
		b.Fatal(err)
	}
	dists := map[string]hpo.Distribution{
		"lr":        hpo.FloatDistribution{Low: 1e-6, High: 1e-4, Log: true},
		"warmup":    hpo.FloatDistribution{Low: 0.01, High: 0.2},
		"epochs":    hpo.IntDistribution{Low: 1, High: 3, Step: 1},
		"batch":     hpo.CategoricalDistribution{Choices: []any{int64(8), int64(16), int64(32)}},
		"scheduler": hpo.CategoricalDistribution{Choices: []any{"linear", "cosine", "constant"}},
		"dropout":   hpo.FloatDistribution{Low: 0, High: 0.2},
	}
	start := time.Now()
	trials := make([]hpo.FrozenTrial, n)
	for i := range trials {
		f := float64(i%97) / 97
		trials[i] = hpo.FrozenTrial{
			State: hpo.Complete, Values: []float64{f},
			InternalParams: map[string]float64{"lr": 1e-6 + f*9e-5, "warmup": 0.01 + f*0.1, "epochs": float64(1 + i%3),
				"batch": float64(i % 3), "scheduler": float64((i / 3) % 3), "dropout": f * 0.2},
			Distributions: dists,
			Intermediate:  map[int]float64{0: f / 3, 1: f / 2, 2: f},
			UserAttrs:     map[string]any{"train_flops": 1.5e15, "peak_mem_mb": int64(1234)},
			Start:         start, End: start.Add(time.Minute),
		}
	}
	if err := s.AddTrials(ctx, st.ID, trials); err != nil {
		b.Fatal(err)
	}
	return s, st
}

// BenchmarkLoadTrials10k: time to load a 10,000-trial study with everything
// (what `tune run` does before each suggestion and `tune export` once).
func BenchmarkLoadTrials10k(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("sqlite/%d", n), func(b *testing.B) {
			s, st := benchStudy(b, "sqlite:///"+filepath.Join(b.TempDir(), "b.db"), n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				trials, err := s.LoadTrials(ctx, st.ID)
				if err != nil || len(trials) != n {
					b.Fatalf("%d trials, %v", len(trials), err)
				}
			}
		})
	}
	// What a worker pays before each trial once its cache holds the
	// finished trials: the trials table plus the unfinished trial's rows.
	b.Run("sqlite/10000/cached", func(b *testing.B) {
		s, st := benchStudy(b, "sqlite:///"+filepath.Join(b.TempDir(), "b.db"), 10000)
		s.CreateTrial(ctx, st.ID)
		c := NewTrialCache(st.ID)
		if _, err := c.Load(ctx, s); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if trials, err := c.Load(ctx, s); err != nil || len(trials) != 10001 {
				b.Fatalf("%d trials, %v", len(trials), err)
			}
		}
	})
}
