package storage

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Encodings of Optuna's columns: datetimes, value types, attribute JSON.

// timeLayout is how Optuna 3.1 (SQLAlchemy) writes datetimes: naive local
// time, space separator, six-digit microseconds.
const timeLayout = "2006-01-02 15:04:05.000000"

func formatTime(t time.Time) string { return t.Local().Format(timeLayout) }

// parseTime reads a naive datetime column as local wall-clock time, whatever
// form the driver hands back (text from SQLite, time.Time from either driver).
func parseTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.Local), nil
	case []byte:
		return parseTimeText(string(x))
	case string:
		return parseTimeText(x)
	}
	return time.Time{}, fmt.Errorf("datetime of type %T", v)
}

func parseTimeText(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("datetime %q: want YYYY-MM-DD HH:MM:SS.ffffff", s)
}

// valueColumns splits a float into Optuna's (value, value_type) pair: the
// number with FINITE, or NULL with INF_POS / INF_NEG / NAN.
func valueColumns(v float64) (any, string) {
	switch {
	case math.IsNaN(v):
		return nil, "NAN"
	case math.IsInf(v, 1):
		return nil, "INF_POS"
	case math.IsInf(v, -1):
		return nil, "INF_NEG"
	}
	return v, "FINITE"
}

func valueFromColumns(v sql.NullFloat64, typ string) (float64, error) {
	switch typ {
	case "FINITE":
		if !v.Valid {
			return 0, fmt.Errorf("FINITE value is NULL")
		}
		return v.Float64, nil
	case "INF_POS":
		return math.Inf(1), nil
	case "INF_NEG":
		return math.Inf(-1), nil
	case "NAN":
		return math.NaN(), nil
	}
	return 0, fmt.Errorf("unknown value type %q", typ)
}

// EncodeJSON writes a value as Python's json.dumps does (", " and ": "
// separators; NaN, Infinity, -Infinity tokens for non-finite floats), which
// Optuna reads back unchanged.
func EncodeJSON(v any) (string, error) {
	var b strings.Builder
	if err := encodeJSON(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

func encodeJSON(b *strings.Builder, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case float64:
		b.WriteString(floatJSON(x))
	case float32:
		b.WriteString(floatJSON(float64(x)))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case string:
		s, _ := json.Marshal(x)
		b.Write(s)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := encodeJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case []float64:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(floatJSON(e))
		}
		b.WriteByte(']')
	case []int:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(e))
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			ks, _ := json.Marshal(k)
			b.Write(ks)
			b.WriteString(": ")
			if err := encodeJSON(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		raw, err := json.Marshal(x)
		if err != nil {
			return err
		}
		b.Write(raw)
	}
	return nil
}

func floatJSON(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	case x == math.Trunc(x) && math.Abs(x) < 1e16:
		return strconv.FormatFloat(x, 'f', 1, 64) // Python keeps the ".0"
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// DecodeJSON reads an attribute's value_json, accepting Python's NaN,
// Infinity and -Infinity tokens. Integer literals decode as int64, other
// numbers as float64.
func DecodeJSON(s string) (any, error) {
	d := &pyDecoder{s: s}
	d.space()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.s) {
		return nil, fmt.Errorf("JSON %q: trailing data at offset %d", clipText(s), d.i)
	}
	return v, nil
}

// pyDecoder is a small recursive-descent JSON reader; encoding/json rejects
// the non-standard tokens Python writes.
type pyDecoder struct {
	s string
	i int
}

func (d *pyDecoder) space() {
	for d.i < len(d.s) && strings.IndexByte(" \t\r\n", d.s[d.i]) >= 0 {
		d.i++
	}
}

func (d *pyDecoder) errf(format string, a ...any) error {
	return fmt.Errorf("JSON %q at offset %d: %s", clipText(d.s), d.i, fmt.Sprintf(format, a...))
}

func (d *pyDecoder) value(depth int) (any, error) {
	if depth > 200 {
		return nil, d.errf("nested too deeply")
	}
	if d.i >= len(d.s) {
		return nil, d.errf("unexpected end")
	}
	for _, lit := range []struct {
		tok string
		val any
	}{{"null", nil}, {"true", true}, {"false", false}, {"NaN", math.NaN()}, {"Infinity", math.Inf(1)}, {"-Infinity", math.Inf(-1)}} {
		if strings.HasPrefix(d.s[d.i:], lit.tok) {
			d.i += len(lit.tok)
			return lit.val, nil
		}
	}
	switch c := d.s[d.i]; {
	case c == '"':
		return d.str()
	case c == '[':
		d.i++
		out := []any{}
		d.space()
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			return out, nil
		}
		for {
			d.space()
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			d.space()
			if d.i >= len(d.s) {
				return nil, d.errf("unterminated list")
			}
			if d.s[d.i] == ']' {
				d.i++
				return out, nil
			}
			if d.s[d.i] != ',' {
				return nil, d.errf("want , or ]")
			}
			d.i++
		}
	case c == '{':
		d.i++
		out := map[string]any{}
		d.space()
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			return out, nil
		}
		for {
			d.space()
			if d.i >= len(d.s) || d.s[d.i] != '"' {
				return nil, d.errf("want a string key")
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			d.space()
			if d.i >= len(d.s) || d.s[d.i] != ':' {
				return nil, d.errf("want :")
			}
			d.i++
			d.space()
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out[k] = v
			d.space()
			if d.i >= len(d.s) {
				return nil, d.errf("unterminated object")
			}
			if d.s[d.i] == '}' {
				d.i++
				return out, nil
			}
			if d.s[d.i] != ',' {
				return nil, d.errf("want , or }")
			}
			d.i++
		}
	case c == '-' || (c >= '0' && c <= '9'):
		j := d.i + 1
		for j < len(d.s) && strings.IndexByte("0123456789.eE+-", d.s[j]) >= 0 {
			j++
		}
		lit := d.s[d.i:j]
		if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
			d.i = j
			return n, nil
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil && !math.IsInf(f, 0) {
			return nil, d.errf("bad number %q", lit)
		}
		d.i = j
		return f, nil
	}
	return nil, d.errf("unexpected %q", d.s[d.i])
}

func (d *pyDecoder) str() (string, error) {
	j := d.i + 1
	for j < len(d.s) {
		switch d.s[j] {
		case '\\':
			j += 2
			continue
		case '"':
			var out string
			if err := json.Unmarshal([]byte(d.s[d.i:j+1]), &out); err != nil {
				return "", d.errf("bad string: %v", err)
			}
			d.i = j + 1
			return out, nil
		}
		j++
	}
	return "", d.errf("unterminated string")
}

func clipText(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
