package augment

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// TestEmbeddingRanker ranks with a tiny random bert: a document's own text
// embeds exactly as the document does, so it comes first.
func TestEmbeddingRanker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "emb.gguf")
	if _, err := modelinit.Write(path, modelinit.Options{Arch: "bert", Texts: docTexts, Vocab: 300, Dim: 32, FF: 64}); err != nil {
		t.Fatal(err)
	}
	enc, err := encoder.Open(path, encoder.Options{Threads: 1, Normalize: true})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	d := toyData()
	r, err := EmbeddingRanker(context.Background(), enc, d)
	if err != nil {
		t.Fatal(err)
	}
	hits, err := r.Search([]string{docTexts[3], docTexts[7]}, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"d3", "d7"} {
		if len(hits[i]) != 4 || hits[i][0].DocID != want || hits[i][0].Score < 0.9999 || hits[i][1].Score > hits[i][0].Score {
			t.Fatalf("query %d: %+v", i, hits[i])
		}
	}
}
