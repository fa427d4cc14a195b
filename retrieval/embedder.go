// Package retrieval holds ragtune's pure-Go retrieval side: datasets and
// importers, vector indexes, BM25, external stores, metrics and evaluation.
// It never imports tune; models reach it through the Embedder interface.
package retrieval

import "context"

// TextKind tells an Embedder whether it embeds search queries or documents;
// instruction-tuned embedders (e5-mistral, Linq) prefix queries only.
type TextKind int

const (
	Document TextKind = iota
	Query
)

// Embedder turns texts into vectors, one per text, all of length Dim().
type Embedder interface {
	Embed(ctx context.Context, texts []string, kind TextKind) ([][]float32, error)
	Dim() int
}
