package hpo

import (
	"fmt"
	"testing"
)

// BenchmarkTPESuggest measures one suggestion over six mixed parameters
// with 100 and 1,000 completed trials in memory.
func BenchmarkTPESuggest(b *testing.B) {
	space := mixedSpace(b)
	for _, multivariate := range []bool{false, true} {
		for _, n := range []int{100, 1000} {
			trials := runStudy(b, NewRandomSampler(1), space, []Direction{Minimize}, n, mixed)
			opt := DefaultTPEOptions()
			opt.Multivariate = multivariate
			s := NewTPESampler(1, opt)
			b.Run(fmt.Sprintf("multivariate=%v/trials=%d", multivariate, n), func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					if _, err := s.Suggest(SuggestRequest{Trials: trials, Directions: []Direction{Minimize}, Space: space, Number: n + i}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
