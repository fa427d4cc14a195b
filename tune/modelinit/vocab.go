package modelinit

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Token types (llama_token_type in llama.cpp).
const (
	tokNormal  int32 = 1
	tokUnknown int32 = 2
	tokControl int32 = 3
	tokByte    int32 = 6
)

// wordStart is the phantom-space marker llama.cpp's vocabularies use.
const wordStart = "▁"

// Vocab is a tokenizer vocabulary in llama.cpp's GGUF form.
type Vocab struct {
	Tokens []string
	Types  []int32
	Scores []float32 // SPM only
	Merges []string  // byte-level BPE only: "a b" in rank order
	// Chars is the number of distinct characters of the corpus; Dropped how
	// many rare ones did not fit in the requested size (they tokenize as UNK
	// or as byte tokens).
	Chars, Dropped int
}

func (v *Vocab) add(tok string, typ int32, score float32) {
	v.Tokens = append(v.Tokens, tok)
	v.Types = append(v.Types, typ)
	v.Scores = append(v.Scores, score)
}

// BERT special tokens, in id order.
var bertSpecials = []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}

// Special token ids of the vocabularies built here.
const (
	bertPad, bertUnk, bertCLS, bertSEP, bertMask = 0, 1, 2, 3, 4
	spmUnk, spmBOS, spmEOS                       = 0, 1, 2
)

// wpmWords splits a text into words as llama.cpp's WordPiece preprocessing
// does (llm_tokenizer_wpm_session::preprocess): NFD, control characters
// dropped, lower case, whitespace separates, and punctuation, ASCII symbols
// and CJK ideographs stand alone.
func wpmWords(text string) []string {
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, r := range norm.NFD.String(text) {
		switch {
		case unicode.IsSpace(r):
			flush()
		case r == 0 || r == unicode.ReplacementChar || unicode.In(r, unicode.C):
		case unicode.IsPunct(r) || (r < 0x7F && unicode.IsSymbol(r)) || isCJK(r):
			flush()
			words = append(words, string(unicode.ToLower(r)))
		default:
			cur.WriteRune(unicode.ToLower(r))
		}
	}
	flush()
	return words
}

// alwaysAlone reports whether wpmWords always makes r a word of its own.
func alwaysAlone(r rune) bool {
	return unicode.IsPunct(r) || (r < 0x7F && unicode.IsSymbol(r)) || isCJK(r)
}

func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// runeCount is a character with its corpus frequency.
type runeCount struct {
	r rune
	n int
}

// byFrequency sorts characters most frequent first, then by code point.
func byFrequency(m map[rune]int) []runeCount {
	out := make([]runeCount, 0, len(m))
	for r, n := range m {
		out = append(out, runeCount{r, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].r < out[j].r
	})
	return out
}

// wordTable counts distinct words; order keeps first appearance so that
// training is reproducible.
type wordTable struct {
	index map[string]int
	words []string
	count []int
}

func (t *wordTable) add(w string) {
	if t.index == nil {
		t.index = map[string]int{}
	}
	i, ok := t.index[w]
	if !ok {
		i = len(t.words)
		t.index[w] = i
		t.words = append(t.words, w)
		t.count = append(t.count, 0)
	}
	t.count[i]++
}

// BuildWordPiece builds a bert (WPM) vocabulary of at most size tokens:
// the five specials, every character of the corpus (as a word-start piece
// "▁c" and, unless it always stands alone, a continuation piece "c"), then
// word-start and continuation pieces learnt by byte-pair merging, which
// makes frequent words whole tokens. Text is lower-cased and NFD-normalised
// as llama.cpp's tokenizer sees it.
func BuildWordPiece(texts []string, size int) (*Vocab, error) {
	if size < len(bertSpecials)+1 {
		return nil, fmt.Errorf("vocabulary size %d is too small: bert needs %d special tokens and at least one more", size, len(bertSpecials))
	}
	var table wordTable
	chars := map[rune]int{}
	for _, t := range texts {
		for _, w := range wpmWords(t) {
			table.add(w)
		}
	}
	for i, w := range table.words {
		for _, r := range w {
			chars[r] += table.count[i]
		}
	}
	v := &Vocab{}
	have := map[string]bool{}
	for _, s := range bertSpecials {
		v.add(s, tokControl, 0)
		have[s] = true
	}
	ranked := byFrequency(chars)
	v.Chars = len(ranked)
	for _, rc := range ranked {
		need := 2
		if alwaysAlone(rc.r) {
			need = 1
		}
		if len(v.Tokens)+need > size {
			v.Dropped++
			continue
		}
		c := string(rc.r)
		v.add(wordStart+c, tokNormal, 0)
		have[wordStart+c] = true
		if need == 2 {
			v.add(c, tokNormal, 0)
			have[c] = true
		}
	}
	// Words as symbol sequences: the first character carries the marker.
	seqs := make([][]string, len(table.words))
	for i, w := range table.words {
		rs := []rune(w)
		seq := make([]string, len(rs))
		for j, r := range rs {
			seq[j] = string(r)
		}
		seq[0] = wordStart + seq[0]
		seqs[i] = seq
	}
	for _, tok := range trainBPE(seqs, table.count, size-len(v.Tokens), 2, have) {
		v.add(tok, tokNormal, 0)
	}
	v.Scores = nil // the bert converter writes no scores
	return v, nil
}

// spmChunks splits a text as llama.cpp's SentencePiece tokenizer sees it:
// every space becomes "▁" and one is put in front, so chunks between spaces
// start with "▁"; other whitespace and control characters are not in the
// vocabulary (they become byte tokens), so they end a chunk, and what
// follows them has no marker.
func spmChunks(text string) []string {
	var out []string
	for _, field := range strings.Split(text, " ") {
		cur := wordStart
		for _, r := range field {
			if unicode.IsSpace(r) || unicode.In(r, unicode.C) || r == unicode.ReplacementChar {
				if cur != "" {
					out = append(out, cur)
				}
				cur = ""
				continue
			}
			cur += string(r)
		}
		if cur != "" {
			out = append(out, cur)
		}
	}
	return out
}

// BuildSentencePiece builds a llama (SPM) vocabulary of at most size tokens:
// <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF> (the fallback for
// anything else), every character of the corpus, then pieces learnt by
// byte-pair merging. Merged pieces score -(merge rank), so llama.cpp's
// highest-score-first merging replays the training order; characters score
// below every merge. Text keeps its case, as SentencePiece does.
func BuildSentencePiece(texts []string, size int) (*Vocab, error) {
	const fixed = 3 + 256
	if size < fixed+1 {
		return nil, fmt.Errorf("vocabulary size %d is too small: llama needs %d special and byte tokens and at least one more", size, fixed)
	}
	v := &Vocab{}
	v.add("<unk>", tokUnknown, 0)
	v.add("<s>", tokControl, 0)
	v.add("</s>", tokControl, 0)
	have := map[string]bool{"<unk>": true, "<s>": true, "</s>": true}
	for b := 0; b < 256; b++ {
		s := fmt.Sprintf("<0x%02X>", b)
		v.add(s, tokByte, 0)
		have[s] = true
	}
	var table wordTable
	for _, t := range texts {
		for _, c := range spmChunks(t) {
			table.add(c)
		}
	}
	chars := map[rune]int{}
	for i, w := range table.words {
		for _, r := range w {
			chars[r] += table.count[i]
		}
	}
	ranked := byFrequency(chars)
	v.Chars = len(ranked)
	var kept []string
	for _, rc := range ranked {
		if fixed+len(kept) >= size {
			v.Dropped++
			continue
		}
		kept = append(kept, string(rc.r))
		have[string(rc.r)] = true
	}
	seqs := make([][]string, len(table.words))
	for i, w := range table.words {
		for _, r := range w {
			seqs[i] = append(seqs[i], string(r))
		}
	}
	merges := trainBPE(seqs, table.count, size-fixed-len(kept), 2, have)
	for i, c := range kept {
		v.add(c, tokNormal, float32(-len(merges)-i))
	}
	for i, tok := range merges {
		v.add(tok, tokNormal, float32(-i))
	}
	return v, nil
}
