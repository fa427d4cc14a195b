package topk

import (
	"math/rand/v2"
	"sort"
	"testing"
)

func TestSelectorMatchesFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n := rng.IntN(300)
		k := 1 + rng.IntN(20)
		scores := make([]float32, n)
		for i := range scores {
			scores[i] = float32(rng.IntN(10)) // many ties on purpose
		}
		s := New(k)
		// Push in two halves through a merge to exercise Merge too.
		other := New(k)
		s.PushScores(0, scores[:n/2])
		other.PushScores(int32(n/2), scores[n/2:])
		s.Merge(other)

		all := make([]Hit, n)
		for i, v := range scores {
			all[i] = Hit{Row: int32(i), Score: v}
		}
		sort.Slice(all, func(i, j int) bool { return better(all[i], all[j]) })
		want := all[:min(k, n)]
		got := s.Sorted()
		if len(got) != len(want) {
			t.Fatalf("trial %d: %d hits, want %d", trial, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("trial %d rank %d: %+v, want %+v", trial, i, got[i], want[i])
			}
		}
	}
}
