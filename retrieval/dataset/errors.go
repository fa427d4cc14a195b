package dataset

import (
	"errors"
	"fmt"
	"strings"
)

// InputError says where in an input file a record is bad, in the style of
// encoding/csv's ParseError, and prints as "path:line:col: field: cause" so
// editors can jump to it. Line counts lines for text formats and records
// (1-based rows) for Arrow and Parquet files; Line and Col are left out of
// the message when zero.
type InputError struct {
	Path  string
	Line  int
	Col   int
	Field string // column or JSON key; "" when the whole record is bad
	Err   error
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *InputError) Unwrap() error { return e.Err }

// Reasons shared by importers and validation, so skip reports can count by kind.
var (
	ErrDuplicateID   = errors.New("duplicate id")
	ErrUnknownDoc    = errors.New("unknown document id")
	ErrUnknownQuery  = errors.New("unknown query id")
	ErrMissingField  = errors.New("missing field")
	ErrEmptyField    = errors.New("empty field")
	ErrInvalidUTF8   = errors.New("invalid UTF-8")
	ErrBadRecord     = errors.New("malformed record")
	ErrBadScore      = errors.New("score is not an integer")
	ErrUnknownColumn = errors.New("no such column")
	// ErrGeneratedOutsideTrain: generated queries are training data only.
	ErrGeneratedOutsideTrain = errors.New("generated query outside the train split")
)
