// Package topk keeps the k best (score, row) pairs of a stream with a
// fixed-size heap, with one deterministic order shared by every ragtune
// index: higher score first, and on equal scores the lower row first. Indexes
// store their documents sorted by id, so "lower row" means "smaller document
// id" (byte order).
package topk

import "sort"

// Hit is one scored row.
type Hit struct {
	Row   int32
	Score float32
}

// better reports whether a ranks before b.
func better(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.Row < b.Row
}

// Selector keeps the k best hits pushed so far. The zero value is unusable;
// make one with New. Not safe for concurrent use.
type Selector struct {
	k    int
	heap []Hit // min-heap on "better": heap[0] is the worst kept hit
}

// New returns a Selector for the k best hits (k >= 1).
func New(k int) *Selector {
	return &Selector{k: k, heap: make([]Hit, 0, k)}
}

// Threshold returns the score a new hit must reach to possibly enter, and
// whether the selector is full (when not full, anything enters).
func (s *Selector) Threshold() (float32, bool) {
	if len(s.heap) < s.k {
		return 0, false
	}
	return s.heap[0].Score, true
}

// Push offers one hit.
func (s *Selector) Push(row int32, score float32) {
	h := Hit{Row: row, Score: score}
	if len(s.heap) < s.k {
		s.heap = append(s.heap, h)
		s.up(len(s.heap) - 1)
		return
	}
	if !better(h, s.heap[0]) {
		return
	}
	s.heap[0] = h
	s.down(0)
}

// PushScores offers scores[i] for rows base+i, skipping quickly those under
// the current threshold.
func (s *Selector) PushScores(base int32, scores []float32) {
	i := 0
	for ; i < len(scores) && len(s.heap) < s.k; i++ {
		s.Push(base+int32(i), scores[i])
	}
	if i == len(scores) {
		return
	}
	min := s.heap[0].Score
	for ; i < len(scores); i++ {
		if scores[i] < min {
			continue
		}
		s.Push(base+int32(i), scores[i])
		min = s.heap[0].Score
	}
}

// Merge pushes every hit kept by o.
func (s *Selector) Merge(o *Selector) {
	for _, h := range o.heap {
		s.Push(h.Row, h.Score)
	}
}

// Sorted returns the kept hits best first. The selector stays usable.
func (s *Selector) Sorted() []Hit {
	out := append([]Hit(nil), s.heap...)
	sort.Slice(out, func(i, j int) bool { return better(out[i], out[j]) })
	return out
}

func (s *Selector) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !better(s.heap[p], s.heap[i]) {
			return
		}
		s.heap[p], s.heap[i] = s.heap[i], s.heap[p]
		i = p
	}
}

func (s *Selector) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		worst := l
		if r := l + 1; r < n && better(s.heap[l], s.heap[r]) {
			worst = r
		}
		if !better(s.heap[i], s.heap[worst]) {
			return
		}
		s.heap[i], s.heap[worst] = s.heap[worst], s.heap[i]
		i = worst
	}
}
