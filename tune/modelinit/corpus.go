package modelinit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// ReadCorpus reads the texts a vocabulary is built from. The file is either
// plain text (one text per line) or JSON Lines whose objects carry "text"
// (and optionally "title", as in a BEIR corpus.jsonl: the title is prefixed).
// JSON Lines is recognised by the first non-blank character being '{'.
func ReadCorpus(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCorpus(f, path)
}

func readCorpus(r io.Reader, path string) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var texts []string
	jsonl := false
	decided := false
	for line := 1; sc.Scan(); line++ {
		raw := sc.Text()
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" {
			continue
		}
		if !utf8.ValidString(raw) {
			return nil, fmt.Errorf("%s:%d: invalid UTF-8", path, line)
		}
		if !decided {
			jsonl, decided = strings.HasPrefix(trimmed, "{"), true
		}
		if !jsonl {
			texts = append(texts, raw)
			continue
		}
		var doc struct {
			Title *string `json:"title"`
			Text  *string `json:"text"`
		}
		if err := json.Unmarshal([]byte(trimmed), &doc); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if doc.Text == nil {
			return nil, fmt.Errorf("%s:%d: object has no \"text\" string", path, line)
		}
		text := *doc.Text
		if doc.Title != nil && *doc.Title != "" {
			text = *doc.Title + " " + text
		}
		texts = append(texts, text)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(texts) == 0 {
		return nil, fmt.Errorf("%s: no texts", path)
	}
	return texts, nil
}
