package bm25

import (
	"strings"
	"unicode"
)

// Tokenizer splits text into lowercase tokens: maximal runs of Unicode
// letters and digits (everything else separates tokens), optionally without
// English stopwords. It is deliberately simple and language-neutral: no
// stemming, so "packages" and "package" are different tokens.
type Tokenizer struct {
	stop map[string]bool
}

// englishStopwords is the classic 33-word English stopword set of Lucene's
// StandardAnalyzer/EnglishAnalyzer.
var englishStopwords = strings.Fields(`a an and are as at be but by for if in into is it no not of on or
	such that the their then there these they this to was will with`)

// NewTokenizer returns a tokenizer that drops English stopwords when asked.
func NewTokenizer(stopwords bool) *Tokenizer {
	t := &Tokenizer{}
	if stopwords {
		t.stop = make(map[string]bool, len(englishStopwords))
		for _, w := range englishStopwords {
			t.stop[w] = true
		}
	}
	return t
}

// Tokens returns the tokens of text in order, repeats included.
func (t *Tokenizer) Tokens(text string) []string {
	var out []string
	start := -1
	emit := func(end int) {
		tok := strings.ToLower(text[start:end])
		if !t.stop[tok] {
			out = append(out, tok)
		}
		start = -1
	}
	for i, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			emit(i)
		}
	}
	if start >= 0 {
		emit(len(text))
	}
	return out
}
