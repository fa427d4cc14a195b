package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestLengthBuckets checks batching by length: every example once per
// epoch, no query or positive twice in a batch, the same batches for the
// same seed and epoch (resumption), other batches in another epoch, and
// far less padding than the plain shuffle.
func TestLengthBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var examples []Example
	for i := range 1000 {
		ex := Example{QueryID: fmt.Sprintf("q%d", i), PositiveID: fmt.Sprintf("d%d", i),
			Query: make([]int32, 3+r.IntN(30)), Positive: make([]int32, 8+r.IntN(120))}
		if i%10 == 0 { // some documents are the positive of two queries
			ex.PositiveID = fmt.Sprintf("d%d", i+1)
		}
		examples = append(examples, ex)
	}
	padding := func(batches [][]int) (own, padded int64) {
		for _, idx := range batches {
			o, p := makeBatch(examples, idx, 0).tokens(1 << 20)
			own, padded = own+o, padded+p
		}
		return own, padded
	}
	for _, byLength := range []bool{false, true} {
		batches := epochBatches(examples, 32, 3, 0, byLength)
		seen := map[int]bool{}
		for _, b := range batches {
			q, d := map[string]bool{}, map[string]bool{}
			for _, i := range b {
				if seen[i] || q[examples[i].QueryID] || d[examples[i].PositiveID] {
					t.Fatalf("byLength %v: example %d repeats (or its query or positive does)", byLength, i)
				}
				seen[i], q[examples[i].QueryID], d[examples[i].PositiveID] = true, true, true
			}
		}
		if len(seen) != len(examples) {
			t.Fatalf("byLength %v: %d of %d examples batched", byLength, len(seen), len(examples))
		}
		if again := epochBatches(examples, 32, 3, 0, byLength); !reflect.DeepEqual(again, batches) {
			t.Errorf("byLength %v: the same seed and epoch gave other batches", byLength)
		}
		if next := epochBatches(examples, 32, 3, 1, byLength); reflect.DeepEqual(next, batches) {
			t.Errorf("byLength %v: the next epoch has the same batches", byLength)
		}
	}
	own, plain := padding(epochBatches(examples, 32, 3, 0, false))
	_, bucketed := padding(epochBatches(examples, 32, 3, 0, true))
	t.Logf("tokens %d; padded to the batch's longest: shuffled %d, by length %d", own, plain, bucketed)
	if float64(bucketed) > 0.8*float64(plain) {
		t.Errorf("bucketing pads to %d tokens, the plain shuffle %d: want at least 20%% less", bucketed, plain)
	}
}

// TestDropoutMask checks the masks' law: only 0 and 1/(1-p), zeros at rate
// p (within four standard deviations), the same mask for the same seed and
// another for another seed.
func TestDropoutMask(t *testing.T) {
	const n, p = 1 << 20, 0.1
	a, b, c := make([]float32, n+3), make([]float32, n+3), make([]float32, n+3)
	fillMask(a, 42, p)
	fillMask(b, 42, p)
	fillMask(c, 43, p)
	zeros := 0
	for i, v := range a {
		switch v {
		case 0:
			zeros++
		case 1 / (1 - float32(p)):
		default:
			t.Fatalf("mask[%d] = %v: want 0 or %v", i, v, 1/(1-p))
		}
	}
	if sd := math.Sqrt(n * p * (1 - p)); math.Abs(float64(zeros)-n*p) > 4*sd {
		t.Errorf("%d zeros in %d: want about %.0f", zeros, len(a), n*p)
	}
	if !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, c) {
		t.Error("a mask must follow its seed, and only it")
	}
}
