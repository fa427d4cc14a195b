package modelinit

import "container/heap"

// trainBPE learns up to maxNew merged symbols from words given as symbol
// sequences with counts: repeatedly the most frequent adjacent pair is
// merged (ties broken by the pair's text, so runs are reproducible), until
// maxNew new strings exist or no pair occurs at least minCount times.
// have holds strings that already exist: a merge that recreates one is
// applied but not returned again. The result is in merge order.
func trainBPE(words [][]string, counts []int, maxNew, minCount int, have map[string]bool) []string {
	out, _ := learnMerges(words, counts, maxNew, minCount, have)
	return out
}

// learnMerges is trainBPE that also returns every merge it applied, in
// order (a byte-level BPE vocabulary lists them).
func learnMerges(words [][]string, counts []int, maxNew, minCount int, have map[string]bool) (out []string, merges []pair) {
	t := &bpe{words: words, counts: counts, pairs: map[pair]int{}, where: map[pair][]int{}}
	touched := map[pair]bool{}
	for i := range words {
		t.addPairs(i, +1, touched)
	}
	t.requeue(touched)
	for len(out) < maxNew {
		p, n, ok := t.best()
		if !ok || n < minCount {
			break
		}
		t.merge(p)
		merges = append(merges, p)
		if s := p.a + p.b; !have[s] {
			have[s] = true
			out = append(out, s)
		}
	}
	return out, merges
}

type pair struct{ a, b string }

// bpe keeps pair counts current and a heap of (pair, count) entries; an
// entry whose count is no longer current is skipped when it surfaces, and
// every change of a count pushes a fresh entry.
type bpe struct {
	words  [][]string
	counts []int
	pairs  map[pair]int   // current occurrences, weighted by word count
	where  map[pair][]int // words that may contain the pair (may be stale)
	queue  pairHeap
}

// addPairs adds (sign=+1) or removes (sign=-1) word i's adjacent pairs.
func (t *bpe) addPairs(i, sign int, touched map[pair]bool) {
	w := t.words[i]
	for j := 0; j+1 < len(w); j++ {
		p := pair{w[j], w[j+1]}
		t.pairs[p] += sign * t.counts[i]
		touched[p] = true
		if sign > 0 {
			t.where[p] = append(t.where[p], i)
		}
	}
}

func (t *bpe) requeue(touched map[pair]bool) {
	for p := range touched {
		if n := t.pairs[p]; n > 0 {
			heap.Push(&t.queue, pairCount{p, n})
		}
	}
}

// best pops stale entries until the top one carries its pair's current count.
func (t *bpe) best() (pair, int, bool) {
	for t.queue.Len() > 0 {
		top := t.queue[0]
		if t.pairs[top.p] == top.n {
			return top.p, top.n, true
		}
		heap.Pop(&t.queue)
	}
	return pair{}, 0, false
}

func (t *bpe) merge(p pair) {
	idx := t.where[p]
	delete(t.where, p)
	seen := map[int]bool{}
	touched := map[pair]bool{}
	for _, i := range idx {
		if seen[i] || !contains(t.words[i], p) {
			continue
		}
		seen[i] = true
		t.addPairs(i, -1, touched)
		w := t.words[i]
		merged := make([]string, 0, len(w)-1)
		for j := 0; j < len(w); j++ {
			if j+1 < len(w) && w[j] == p.a && w[j+1] == p.b {
				merged = append(merged, p.a+p.b)
				j++
				continue
			}
			merged = append(merged, w[j])
		}
		t.words[i] = merged
		t.addPairs(i, +1, touched)
	}
	t.requeue(touched)
}

func contains(w []string, p pair) bool {
	for j := 0; j+1 < len(w); j++ {
		if w[j] == p.a && w[j+1] == p.b {
			return true
		}
	}
	return false
}

type pairCount struct {
	p pair
	n int
}

// pairHeap is a max-heap on count, ties broken by the pair's strings.
type pairHeap []pairCount

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].n != h[j].n {
		return h[i].n > h[j].n
	}
	if h[i].p.a != h[j].p.a {
		return h[i].p.a < h[j].p.a
	}
	return h[i].p.b < h[j].p.b
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairCount)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
