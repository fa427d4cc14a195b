package hfconvert

import (
	"testing"
)

// FuzzSPM: no byte string makes the SentencePiece parser panic, and what it
// accepts re-encodes to a model that parses to the same pieces.
func FuzzSPM(f *testing.F) {
	m := &spmModel{ModelType: spmBPE, AddDummy: true, Charsmap: []byte{1, 2, 3},
		Pieces: []spmPiece{{"<unk>", 0, 2}, {"▁a", -1.5, 1}, {"<0x0A>", 0, 6}}}
	valid := encodeSPM(m)
	f.Add(valid)
	for _, n := range []int{1, 2, 5, len(valid) / 2, len(valid) - 1} {
		f.Add(valid[:n])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseSPM(data, "tokenizer.model")
		if err != nil {
			return
		}
		again, err := parseSPM(encodeSPM(got), "tokenizer.model")
		if err != nil {
			t.Fatalf("re-encoded model refused: %v", err)
		}
		if len(again.Pieces) != len(got.Pieces) || again.ModelType != got.ModelType {
			t.Fatalf("re-encoding changed the model")
		}
	})
}

// FuzzTokenizerJSON: no tokenizer.json makes the reader panic or allocate
// beyond what the file describes.
func FuzzTokenizerJSON(f *testing.F) {
	f.Add([]byte(`{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "a": 1, "##b": 3}}, "added_tokens": [{"id": 0, "content": "[PAD]", "special": true}]}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}, "pre_tokenizer": {"type": "ByteLevel"}}`))
	f.Add([]byte(`{"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0], ["▁a", -1.2]]}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAEC"}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 5}, "merges": ["a b", "c"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseTokenizerJSON(data, "tokenizer.json")
		if err != nil {
			return
		}
		if len(v.Tokens) != len(v.Types) || (v.Scores != nil && len(v.Scores) != len(v.Tokens)) {
			t.Fatalf("%d tokens, %d types, %d scores", len(v.Tokens), len(v.Types), len(v.Scores))
		}
		if len(v.Tokens) > 2*len(data)+1024 {
			t.Fatalf("%d tokens from %d bytes", len(v.Tokens), len(data))
		}
	})
}
