package adapter

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safefile"
)

// GGUFFile is the name ExportGGUF gives the adapter in its folder.
const GGUFFile = "adapter.gguf"

// ExportGGUF copies the adapter byte for byte to dir/adapter.gguf after
// checking it as llama.cpp's loader does, and against the base model at
// modelPath when one is given. It returns the path written.
func ExportGGUF(adapterPath, dir, modelPath string) (string, error) {
	info, err := Inspect(adapterPath)
	if err != nil {
		return "", err
	}
	if modelPath != "" {
		base, err := gguf.Open(modelPath)
		if err != nil {
			return "", err
		}
		defer base.Close()
		if _, err := matchBase(base, info); err != nil {
			return "", err
		}
	}
	src, err := os.Open(adapterPath)
	if err != nil {
		return "", err
	}
	defer src.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, GGUFFile)
	err = safefile.Write(out, func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	return out, nil
}
