package modelinit

import (
	"fmt"
	"unicode"
)

// Special tokens of the byte-level BPE vocabulary (Qwen's), after the
// learnt tokens as in Qwen's own vocabulary: <|endoftext|> is EOS, BOS and
// padding; <|im_end|> ends a chat turn (EOT).
var byteBPESpecials = []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}

// byteChars is GPT-2's bytes-to-unicode table: printable Latin-1 bytes
// stand for themselves, the others (controls, space, NBSP, soft hyphen)
// take the code points from U+0100 up in byte order, so every byte is one
// visible character in the vocabulary's strings.
func byteChars() [256]string {
	var out [256]string
	next := 256
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE {
			out[b] = string(rune(b))
		} else {
			out[b] = string(rune(next))
			next++
		}
	}
	return out
}

// bpeWords splits a text into the pieces a GPT-2-style pre-tokenizer
// makes, approximately (merges are learnt inside pieces, and llama.cpp's
// own qwen2 pre-tokenizer decides at run time; a rougher split only
// changes which merges are worth learning): letters with the one space or
// sign before them, single digits, runs of other signs with a space
// before, runs of white space.
func bpeWords(text string) []string {
	rs := []rune(text)
	var out []string
	class := func(r rune) byte {
		switch {
		case unicode.IsLetter(r):
			return 'L'
		case unicode.IsNumber(r):
			return 'N'
		case unicode.IsSpace(r):
			return 'S'
		}
		return 'P'
	}
	for i := 0; i < len(rs); {
		j := i + 1
		switch c := class(rs[i]); {
		case c == 'N':
		case c == 'L' || (j < len(rs) && class(rs[j]) == 'L' && rs[i] != '\n' && rs[i] != '\r'):
			for j < len(rs) && class(rs[j]) == 'L' {
				j++
			}
		case c == 'P' || (rs[i] == ' ' && j < len(rs) && class(rs[j]) == 'P'):
			for j < len(rs) && class(rs[j]) == 'P' {
				j++
			}
		default: // white space
			for j < len(rs) && class(rs[j]) == 'S' && !(rs[j] == ' ' && j+1 < len(rs) && class(rs[j+1]) != 'S') {
				j++
			}
		}
		out = append(out, string(rs[i:j]))
		i = j
	}
	return out
}

// BuildByteBPE builds a byte-level BPE vocabulary (tokenizer.ggml.model
// "gpt2", as Qwen3's) of at most size tokens: the 256 byte characters, the
// tokens learnt by merging within pieces of the corpus, then Qwen's
// specials. Merges lists every merge in rank order ("a b").
func BuildByteBPE(texts []string, size int) (*Vocab, error) {
	fixed := 256 + len(byteBPESpecials)
	if size < fixed+1 {
		return nil, fmt.Errorf("vocabulary size %d is too small: a byte-level BPE vocabulary needs %d byte and special tokens and at least one more", size, fixed)
	}
	chars := byteChars()
	v := &Vocab{}
	have := map[string]bool{}
	for _, c := range chars {
		v.add(c, tokNormal, 0)
		have[c] = true
	}
	var table wordTable
	for _, t := range texts {
		for _, w := range bpeWords(t) {
			table.add(w)
		}
	}
	seqs := make([][]string, len(table.words))
	for i, w := range table.words {
		for _, b := range []byte(w) {
			seqs[i] = append(seqs[i], chars[b])
		}
	}
	toks, merges := learnMerges(seqs, table.count, size-fixed, 2, have)
	for _, t := range toks {
		v.add(t, tokNormal, 0)
	}
	for _, p := range merges {
		v.Merges = append(v.Merges, p.a+" "+p.b)
	}
	for _, s := range byteBPESpecials {
		v.add(s, tokControl, 0)
	}
	v.Chars = 256
	v.Scores = nil // the gpt2 converter writes no scores
	return v, nil
}

// id of a special token of a byte-level BPE vocabulary.
func (v *Vocab) id(tok string) int {
	for i := len(v.Tokens) - 1; i >= 0; i-- {
		if v.Tokens[i] == tok {
			return i
		}
	}
	return -1
}
