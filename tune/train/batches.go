package train

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// Example is a tokenized training example.
type Example struct {
	QueryID, PositiveID string
	Query, Positive     []int32
	Negatives           [][]int32
}

// epochBatches shuffles examples with a seed fixed by (seed, epoch), so a
// resumed run sees the same order, and groups them into batches of size n in
// which no query and no positive document appears twice: with in-batch
// negatives a repeated positive would be a false negative for the other query.
//
// byLength groups texts of similar length, so a batch pads little: the
// shuffled order is cut into windows of bucketWindow batches, each window
// sorted by the padded length of its documents, then its queries', and cut
// into batches; the batches are then shuffled (with the same seed), so
// lengths do not come in order.
func epochBatches(examples []Example, n int, seed uint64, epoch int, byLength bool) [][]int {
	order := make([]int, len(examples))
	for i := range order {
		order[i] = i
	}
	r := rand.New(rand.NewPCG(seed, uint64(epoch)+1))
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	if !byLength {
		return distinctBatches(examples, order, n)
	}
	padded := func(i int) [2]int {
		ex := examples[i]
		return [2]int{roundSeq(len(ex.Positive), math.MaxInt), roundSeq(len(ex.Query), math.MaxInt)}
	}
	for w := 0; w < len(order); w += bucketWindow * n {
		win := order[w:min(w+bucketWindow*n, len(order))]
		slices.SortStableFunc(win, func(a, b int) int {
			pa, pb := padded(a), padded(b)
			return cmp.Or(cmp.Compare(pa[0], pb[0]), cmp.Compare(pa[1], pb[1]))
		})
	}
	batches := distinctBatches(examples, order, n)
	r.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
	return batches
}

// bucketWindow is how many batches' worth of examples length bucketing
// sorts together: wide enough to find texts of one length, narrow enough
// that a batch still draws from the whole epoch's shuffle.
const bucketWindow = 50

// distinctBatches groups examples, in order, into batches of n in which no
// query and no positive repeats; an example that would repeat one waits
// for the next batch.
func distinctBatches(examples []Example, order []int, n int) [][]int {
	var batches [][]int
	var deferred []int
	for pos := 0; pos < len(order) || len(deferred) > 0; {
		var batch, later []int
		seenQ, seenD := map[string]bool{}, map[string]bool{}
		take := func(i int) {
			ex := examples[i]
			if len(batch) < n && !seenQ[ex.QueryID] && !seenD[ex.PositiveID] {
				batch = append(batch, i)
				seenQ[ex.QueryID], seenD[ex.PositiveID] = true, true
			} else {
				later = append(later, i)
			}
		}
		for _, i := range deferred {
			take(i)
		}
		for ; pos < len(order) && len(batch) < n; pos++ {
			take(order[pos])
		}
		batches = append(batches, batch)
		deferred = later
	}
	return batches
}

// makeBatch assembles a Batch from examples; it uses negPerQuery hard
// negatives per query (the examples must have that many).
func makeBatch(examples []Example, idx []int, negPerQuery int) Batch {
	b := Batch{NegPerQuery: negPerQuery}
	for _, i := range idx {
		b.Queries = append(b.Queries, examples[i].Query)
		b.Docs = append(b.Docs, examples[i].Positive)
	}
	for _, i := range idx {
		b.Docs = append(b.Docs, examples[i].Negatives[:negPerQuery]...)
	}
	return b
}

// negativesFor chooses how many hard negatives a batch uses: the configured
// number, capped by the example with the fewest.
func negativesFor(examples []Example, idx []int, want int) int {
	n := want
	for _, i := range idx {
		n = min(n, len(examples[i].Negatives))
	}
	return n
}

// tokenizeExamples turns dataset examples into token ids. Triplet loss needs
// a negative for every example: those without one get a random corpus
// document (seeded) that is not the positive.
func tokenizeExamples(pairs []dataset.Example, encode func(string) ([]int32, error), needNegative bool, corpus []string, corpusIDs []string, seed uint64) ([]Example, error) {
	r := rand.New(rand.NewPCG(seed, 0x6e6567))
	out := make([]Example, 0, len(pairs))
	for _, p := range pairs {
		q, err := encode(p.Anchor)
		if err != nil {
			return nil, err
		}
		d, err := encode(p.Positive)
		if err != nil {
			return nil, err
		}
		ex := Example{QueryID: p.QueryID, PositiveID: p.PositiveID, Query: q, Positive: d}
		for _, n := range p.Negatives {
			ids, err := encode(n)
			if err != nil {
				return nil, err
			}
			ex.Negatives = append(ex.Negatives, ids)
		}
		if needNegative && len(ex.Negatives) == 0 && len(corpus) > 1 {
			for {
				j := r.IntN(len(corpus))
				if corpusIDs[j] != p.PositiveID {
					ids, err := encode(corpus[j])
					if err != nil {
						return nil, err
					}
					ex.Negatives = append(ex.Negatives, ids)
					break
				}
			}
		}
		out = append(out, ex)
	}
	return out, nil
}
