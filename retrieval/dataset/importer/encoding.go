package importer

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/encoding/charmap"
)

// Encoding is the character encoding of a text input (JSONL, CSV, TSV,
// BEIR files). Inputs are UTF-8 unless the user says otherwise: bytes that
// are not UTF-8 are an error naming the file and line, never silently
// replaced, and are converted only when the user names the encoding.
type Encoding string

// The encodings an import can convert from.
const (
	UTF8        Encoding = "utf-8"
	Latin1      Encoding = "latin1"       // ISO 8859-1
	Windows1252 Encoding = "windows-1252" // Latin-1 with printable 0x80–0x9F, what most "Latin-1" files really are
)

// ParseEncoding maps a user's name for an encoding to an Encoding.
func ParseEncoding(name string) (Encoding, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "utf-8", "utf8":
		return UTF8, nil
	case "latin1", "latin-1", "iso-8859-1", "iso8859-1":
		return Latin1, nil
	case "windows-1252", "cp1252":
		return Windows1252, nil
	}
	return "", fmt.Errorf("unknown encoding %q: want utf-8, latin1 or windows-1252", name)
}

// reader converts r from the encoding to UTF-8 (UTF-8 passes through and is
// checked where it is parsed).
func (e Encoding) reader(r io.Reader) io.Reader {
	switch e {
	case Latin1:
		return charmap.ISO8859_1.NewDecoder().Reader(r)
	case Windows1252:
		return charmap.Windows1252.NewDecoder().Reader(r)
	}
	return r
}
