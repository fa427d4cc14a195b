package train

// GradCache (Gao et al., "Scaling Deep Contrastive Learning Batch Size under
// Memory Limited Setup", 2021): in-batch negatives span the whole batch
// while the compute buffer holds one chunk of texts. The step embeds every
// chunk without keeping activations, computes the loss and its gradient
// with respect to the embeddings over the whole batch, then recomputes each
// chunk and differentiates ⟨embeddings, their gradient⟩. Dropout masks are
// regenerated from the seeds the first pass drew.

// chunk is one slice of a side's texts between the two passes.
type chunk struct {
	key   segmentKey
	seqs  [][]int32
	seeds []uint64
}

// embedChunks embeds seqs in chunks of s.GradCache texts and returns the
// chunks and the embeddings [E, len(seqs)] in order.
func (s *Stepper) embedChunks(seqs [][]int32, docs bool) ([]chunk, []float32, error) {
	var chunks []chunk
	var emb []float32
	for i := 0; i < len(seqs); i += s.GradCache {
		part := seqs[i:min(i+s.GradCache, len(seqs))]
		c := chunk{key: segmentKey{docs: docs, S: maxLen(part, s.m.Ctx), B: len(part), index: wholeModel}, seqs: part}
		g, err := s.segment(c.key)
		if err != nil {
			return nil, nil, err
		}
		c.seeds = s.dropoutSeeds(g.in, true)
		if err := s.computeSegment(g, g.fwd, part, c.seeds, nil, nil); err != nil {
			return nil, nil, err
		}
		emb = append(emb, g.out.F32()...)
		chunks = append(chunks, c)
	}
	return chunks, emb, nil
}

// backChunks recomputes each chunk with grad, the loss's gradient with
// respect to the chunks' embeddings, and adds weight times the parameter
// gradients.
func (s *Stepper) backChunks(chunks []chunk, grad []float32, weight float32) error {
	off := 0
	for _, c := range chunks {
		n := s.m.Dim * len(c.seqs)
		g, err := s.segment(c.key)
		if err != nil {
			return err
		}
		if g.bwd != nil { // nil: documents under query-side-only learn nothing
			if err := s.computeSegment(g, g.bwd, c.seqs, c.seeds, nil, grad[off:off+n]); err != nil {
				return err
			}
			s.addGrads(g.params, g.grads, weight)
		}
		off += n
	}
	return nil
}

// accumulateCached is Accumulate with GradCache.
func (s *Stepper) accumulateCached(b Batch, weight float32) (float64, error) {
	s.LastFLOPs = 0
	qChunks, qEmb, err := s.embedChunks(b.Queries, false)
	if err != nil {
		return 0, err
	}
	dChunks, dEmb, err := s.embedChunks(b.Docs, true)
	if err != nil {
		return 0, err
	}
	h, err := s.headGraph(0, len(b.Queries), 0, len(b.Docs))
	if err != nil {
		return 0, err
	}
	loss, gq, gd, err := s.computeHead(h, nil, nil, qEmb, dEmb, weight)
	if err != nil || gq == nil {
		return loss, err
	}
	if err := s.backChunks(qChunks, gq, weight); err != nil {
		return 0, err
	}
	return loss, s.backChunks(dChunks, gd, weight)
}
