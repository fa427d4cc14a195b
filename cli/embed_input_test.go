package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadEmbedInputRefusesInvalidUTF8(t *testing.T) {
	path := filepath.Join(t.TempDir(), "texts.jsonl")
	if err := os.WriteFile(path, []byte("{\"text\": \"fine\"}\n{\"text\": \"caf\xe9\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readEmbedInput(path)
	if err == nil || !strings.Contains(err.Error(), "texts.jsonl:2: invalid UTF-8") {
		t.Fatalf("got %v, want invalid UTF-8 at line 2", err)
	}
}
