package modelinit

import (
	"strings"
	"testing"
)

func TestReadCorpusRefusesInvalidUTF8(t *testing.T) {
	// Bytes that are not UTF-8 would be replaced by U+FFFD inside the JSON
	// decoder and learnt into the vocabulary; they are refused with the line.
	for _, in := range []string{"{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n", "plain\ncaf\xe9\n"} {
		if _, err := readCorpus(strings.NewReader(in), "c.jsonl"); err == nil || !strings.Contains(err.Error(), "c.jsonl:2: invalid UTF-8") {
			t.Errorf("%q: got %v", in, err)
		}
	}
}
