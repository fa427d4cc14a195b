package hpo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// This file gives the three distribution types Optuna's semantics: the
// constructor rules (validation, silent lowering of a high bound that is not
// on the step grid), internal/external conversion, and distribution_json in
// the exact forms Optuna 3.1 writes and reads.

// NewFloatDistribution validates like optuna.distributions.FloatDistribution:
// log and step exclude each other, low ≤ high, log needs low > 0, step > 0.
// A high bound off the step grid is lowered onto it (decimal arithmetic, as
// Optuna does), so the returned distribution is what Optuna would store.
func NewFloatDistribution(low, high float64, log bool, step float64) (FloatDistribution, error) {
	d := FloatDistribution{Low: low, High: high, Log: log, Step: step}
	switch {
	case math.IsNaN(low) || math.IsNaN(high) || math.IsInf(low, 0) || math.IsInf(high, 0):
		return d, fmt.Errorf("float distribution: low and high must be finite (low=%v, high=%v)", low, high)
	case log && step != 0:
		return d, fmt.Errorf("float distribution: log and step cannot be used together")
	case step < 0 || math.IsNaN(step) || math.IsInf(step, 0):
		return d, fmt.Errorf("float distribution: step must be > 0 (step=%v)", step)
	case low > high:
		return d, fmt.Errorf("float distribution: low must be ≤ high (low=%v, high=%v)", low, high)
	case log && low <= 0:
		return d, fmt.Errorf("float distribution: log scale needs low > 0 (low=%v)", low)
	}
	if step != 0 {
		d.High = adjustFloatHigh(low, high, step)
	}
	return d, nil
}

// adjustFloatHigh is Optuna's _adjust_discrete_uniform_high: exact decimal
// arithmetic on the shortest decimal forms of the three numbers.
func adjustFloatHigh(low, high, step float64) float64 {
	dec := func(x float64) *big.Rat {
		r, _ := new(big.Rat).SetString(strconv.FormatFloat(x, 'g', -1, 64))
		return r
	}
	lo, hi, q := dec(low), dec(high), dec(step)
	span := new(big.Rat).Sub(hi, lo)
	ratio := new(big.Rat).Quo(span, q)
	if ratio.IsInt() {
		return high
	}
	n := new(big.Int).Quo(ratio.Num(), ratio.Denom()) // floor: span ≥ 0
	adj := new(big.Rat).Add(new(big.Rat).Mul(new(big.Rat).SetInt(n), q), lo)
	f, _ := adj.Float64()
	return f
}

// NewIntDistribution validates like optuna.distributions.IntDistribution:
// low ≤ high, step ≥ 1, log needs low ≥ 1 and step == 1. A high bound off the
// step grid is lowered onto it.
func NewIntDistribution(low, high int64, log bool, step int64) (IntDistribution, error) {
	d := IntDistribution{Low: low, High: high, Log: log, Step: step}
	switch {
	case step < 1:
		return d, fmt.Errorf("int distribution: step must be ≥ 1 (step=%d)", step)
	case log && step != 1:
		return d, fmt.Errorf("int distribution: log scale needs step 1 (step=%d)", step)
	case low > high:
		return d, fmt.Errorf("int distribution: low must be ≤ high (low=%d, high=%d)", low, high)
	case log && low < 1:
		return d, fmt.Errorf("int distribution: log scale needs low ≥ 1 (low=%d)", low)
	}
	if r := (high - low) % step; r != 0 {
		d.High = high - r
	}
	return d, nil
}

// NewCategoricalDistribution checks that there is at least one choice and
// that every choice is a JSON scalar (nil, bool, int64, float64, string).
// Go int and float32 choices are widened to int64 and float64.
func NewCategoricalDistribution(choices []any) (CategoricalDistribution, error) {
	if len(choices) == 0 {
		return CategoricalDistribution{}, fmt.Errorf("categorical distribution: needs at least one choice")
	}
	out := make([]any, len(choices))
	for i, c := range choices {
		switch v := c.(type) {
		case nil, bool, int64, float64, string:
			out[i] = v
		case int:
			out[i] = int64(v)
		case float32:
			out[i] = float64(v)
		default:
			return CategoricalDistribution{}, fmt.Errorf("categorical distribution: choice %d has type %T; want null, bool, number or string", i, c)
		}
	}
	return CategoricalDistribution{Choices: out}, nil
}

// ---- FloatDistribution ----

// ToExternal returns the value itself as a float64.
func (d FloatDistribution) ToExternal(internal float64) any { return internal }

// ToInternal accepts any Go number.
func (d FloatDistribution) ToInternal(external any) (float64, error) {
	v, ok := asFloat(external)
	if !ok {
		return 0, fmt.Errorf("value %v (%T) is not a number", external, external)
	}
	if !d.Contains(v) {
		return 0, fmt.Errorf("value %v is outside %s", v, d.JSON())
	}
	return v, nil
}

// Contains follows Optuna: inside [low, high] and, with a step, on the grid
// within 1e-8 steps.
func (d FloatDistribution) Contains(v float64) bool {
	if math.IsNaN(v) || v < d.Low || v > d.High {
		return false
	}
	if d.Step == 0 {
		return true
	}
	k := (v - d.Low) / d.Step
	return math.Abs(k-math.Round(k)) < 1e-8
}

// Single reports whether only one value can be drawn.
func (d FloatDistribution) Single() bool {
	if d.Low == d.High {
		return true
	}
	return d.Step != 0 && d.High-d.Low < d.Step
}

// JSON is Optuna's distribution_json, attributes in the order Optuna writes them.
func (d FloatDistribution) JSON() string {
	step := "null"
	if d.Step != 0 {
		step = pyFloat(d.Step)
	}
	return fmt.Sprintf(`{"name": "FloatDistribution", "attributes": {"step": %s, "low": %s, "high": %s, "log": %t}}`,
		step, pyFloat(d.Low), pyFloat(d.High), d.Log)
}

// ---- IntDistribution ----

// ToExternal returns the value as an int64.
func (d IntDistribution) ToExternal(internal float64) any { return int64(internal) }

// ToInternal accepts Go integers and integral floats.
func (d IntDistribution) ToInternal(external any) (float64, error) {
	v, ok := asFloat(external)
	if !ok || v != math.Trunc(v) {
		return 0, fmt.Errorf("value %v (%T) is not an integer", external, external)
	}
	if !d.Contains(v) {
		return 0, fmt.Errorf("value %v is outside %s", v, d.JSON())
	}
	return v, nil
}

// Contains follows Optuna: low ≤ v ≤ high and (v − low) a multiple of the step
// (so 4.5 is not in an int domain).
func (d IntDistribution) Contains(v float64) bool {
	if math.IsNaN(v) || v < float64(d.Low) || v > float64(d.High) {
		return false
	}
	return math.Mod(v-float64(d.Low), float64(d.Step)) == 0
}

// Single reports whether only one value can be drawn.
func (d IntDistribution) Single() bool {
	if d.Log {
		return d.Low == d.High
	}
	return d.Low == d.High || d.High-d.Low < d.Step
}

// JSON is Optuna's distribution_json, attributes in the order Optuna writes them.
func (d IntDistribution) JSON() string {
	return fmt.Sprintf(`{"name": "IntDistribution", "attributes": {"log": %t, "step": %d, "low": %d, "high": %d}}`,
		d.Log, d.Step, d.Low, d.High)
}

// ---- CategoricalDistribution ----

// ToExternal returns the choice at the index; nil if the index is out of range.
func (d CategoricalDistribution) ToExternal(internal float64) any {
	if !d.Contains(internal) {
		return nil
	}
	return d.Choices[int(internal)]
}

// ToInternal returns the index of the first choice equal to the value under
// Python's equality (True == 1 == 1.0; NaN equals NaN), as Optuna stores it.
func (d CategoricalDistribution) ToInternal(external any) (float64, error) {
	for i, c := range d.Choices {
		if pyEqual(c, external) {
			return float64(i), nil
		}
	}
	return 0, fmt.Errorf("value %v is not one of the choices %s", external, choicesJSON(d.Choices))
}

// Contains reports whether the value is a valid choice index.
func (d CategoricalDistribution) Contains(v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	i := int(v) // Optuna truncates
	return i >= 0 && i < len(d.Choices)
}

// Single reports whether there is one choice only.
func (d CategoricalDistribution) Single() bool { return len(d.Choices) == 1 }

// JSON is Optuna's distribution_json.
func (d CategoricalDistribution) JSON() string {
	return `{"name": "CategoricalDistribution", "attributes": {"choices": ` + choicesJSON(d.Choices) + `}}`
}

func choicesJSON(choices []any) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range choices {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyScalarJSON(c))
	}
	b.WriteByte(']')
	return b.String()
}

// pyScalarJSON writes a scalar as Python's json.dumps would.
func pyScalarJSON(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return pyFloat(x)
	case string:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(x) // a string always encodes
		return strings.TrimSuffix(buf.String(), "\n")
	default:
		return fmt.Sprintf("%q", fmt.Sprint(x))
	}
}

// pyFloat formats a float64 as Python's repr (and json.dumps) does: shortest
// round-trip digits, ".0" on integral values, exponent form below 1e-4 and
// from 1e16 up, NaN/Infinity tokens for the non-finite values.
func pyFloat(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	}
	if x == 0 {
		if math.Signbit(x) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(x, 'e', -1, 64) // d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// asFloat converts any Go number (and json.Number) to float64.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// pyEqual is Python's == on JSON scalars: bools are the numbers 0 and 1,
// ints equal floats of the same value; NaN is treated as equal to NaN, as
// Optuna's list.index finds the same NaN object.
func pyEqual(a, b any) bool {
	num := func(v any) (float64, bool) {
		if t, ok := v.(bool); ok {
			if t {
				return 1, true
			}
			return 0, true
		}
		return asFloat(v)
	}
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if sa, ok := a.(string); ok {
		sb, ok := b.(string)
		return ok && sa == sb
	}
	fa, oka := num(a)
	fb, okb := num(b)
	if !oka || !okb {
		return false
	}
	return fa == fb || (math.IsNaN(fa) && math.IsNaN(fb))
}

// SameDistribution reports whether two distributions are identical (same
// type and attributes), the test Optuna uses for intersection search spaces.
func SameDistribution(a, b Distribution) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.JSON() == b.JSON()
}

// CheckCompatible applies Optuna's rule for a parameter seen again within a
// study: same distribution type and log flag, identical categorical choices.
// Ranges and steps may differ ("dynamic" search spaces).
func CheckCompatible(old, new Distribution) error {
	switch o := old.(type) {
	case FloatDistribution:
		n, ok := new.(FloatDistribution)
		if !ok {
			return fmt.Errorf("distribution changed from %s to %s", old.JSON(), new.JSON())
		}
		if o.Log != n.Log {
			return fmt.Errorf("log flag changed from %t to %t", o.Log, n.Log)
		}
	case IntDistribution:
		n, ok := new.(IntDistribution)
		if !ok {
			return fmt.Errorf("distribution changed from %s to %s", old.JSON(), new.JSON())
		}
		if o.Log != n.Log {
			return fmt.Errorf("log flag changed from %t to %t", o.Log, n.Log)
		}
	case CategoricalDistribution:
		n, ok := new.(CategoricalDistribution)
		if !ok || old.JSON() != n.JSON() {
			return fmt.Errorf("categorical choices changed from %s to %s", old.JSON(), new.JSON())
		}
	}
	return nil
}

// ParseDistributionJSON reads a distribution_json as Optuna writes it
// ({"name": ..., "attributes": {...}}, legacy class names included) or in
// Optuna's abbreviated CLI form ({"type": "float"|"int"|"categorical", ...}).
// Missing log/step take Optuna's defaults.
func ParseDistributionJSON(s string) (Distribution, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("distribution_json %q: %v", clip(s), err)
	}
	var name string
	var attrs map[string]json.RawMessage
	if raw, ok := top["name"]; ok {
		if err := json.Unmarshal(raw, &name); err != nil {
			return nil, fmt.Errorf("distribution_json %q: name: %v", clip(s), err)
		}
		if err := json.Unmarshal(top["attributes"], &attrs); err != nil || attrs == nil {
			return nil, fmt.Errorf("distribution_json %q: attributes must be an object", clip(s))
		}
	} else if raw, ok := top["type"]; ok {
		var typ string
		if err := json.Unmarshal(raw, &typ); err != nil {
			return nil, fmt.Errorf("distribution_json %q: type: %v", clip(s), err)
		}
		name = map[string]string{"float": "FloatDistribution", "int": "IntDistribution",
			"categorical": "CategoricalDistribution"}[typ]
		if name == "" {
			return nil, fmt.Errorf("distribution_json %q: unknown type %q", clip(s), typ)
		}
		attrs = top
		delete(attrs, "type")
	} else {
		return nil, fmt.Errorf("distribution_json %q: needs \"name\" and \"attributes\"", clip(s))
	}
	d, err := distributionFromAttrs(name, attrs)
	if err != nil {
		return nil, fmt.Errorf("distribution_json %q: %v", clip(s), err)
	}
	return d, nil
}

func distributionFromAttrs(name string, attrs map[string]json.RawMessage) (Distribution, error) {
	f := attrReader{attrs: attrs}
	var d Distribution
	var err error
	switch name {
	case "FloatDistribution":
		d, err = NewFloatDistribution(f.float("low"), f.float("high"), f.boolean("log"), f.optFloat("step"))
	case "UniformDistribution":
		d, err = NewFloatDistribution(f.float("low"), f.float("high"), false, 0)
	case "LogUniformDistribution":
		d, err = NewFloatDistribution(f.float("low"), f.float("high"), true, 0)
	case "DiscreteUniformDistribution":
		d, err = NewFloatDistribution(f.float("low"), f.float("high"), false, f.float("q"))
	case "IntDistribution":
		step := int64(1)
		if _, ok := attrs["step"]; ok {
			step = f.integer("step")
		}
		d, err = NewIntDistribution(f.integer("low"), f.integer("high"), f.boolean("log"), step)
	case "IntUniformDistribution":
		step := int64(1)
		if _, ok := attrs["step"]; ok {
			step = f.integer("step")
		}
		d, err = NewIntDistribution(f.integer("low"), f.integer("high"), false, step)
	case "IntLogUniformDistribution":
		d, err = NewIntDistribution(f.integer("low"), f.integer("high"), true, 1)
	case "CategoricalDistribution":
		d, err = NewCategoricalDistribution(f.choices("choices"))
	default:
		return nil, fmt.Errorf("unknown distribution %q", name)
	}
	if f.err != nil {
		return nil, f.err
	}
	return d, err
}

// attrReader decodes distribution attributes, keeping the first error.
type attrReader struct {
	attrs map[string]json.RawMessage
	err   error
}

func (r *attrReader) fail(key string, format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("attribute %q: "+format, append([]any{key}, a...)...)
	}
}

func (r *attrReader) float(key string) float64 {
	raw, ok := r.attrs[key]
	if !ok {
		r.fail(key, "missing")
		return 0
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		r.fail(key, "want a number, got %s", raw)
		return 0
	}
	v, err := n.Float64()
	if err != nil {
		r.fail(key, "%v", err)
	}
	return v
}

// optFloat reads a float that may be absent or null (0 then).
func (r *attrReader) optFloat(key string) float64 {
	if raw, ok := r.attrs[key]; !ok || string(raw) == "null" {
		return 0
	}
	return r.float(key)
}

func (r *attrReader) integer(key string) int64 {
	v := r.float(key)
	if v != math.Trunc(v) || math.Abs(v) > 1<<62 {
		r.fail(key, "want an integer, got %v", v)
		return 0
	}
	return int64(v)
}

func (r *attrReader) boolean(key string) bool {
	raw, ok := r.attrs[key]
	if !ok || string(raw) == "null" {
		return false
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		r.fail(key, "want true or false, got %s", raw)
	}
	return b
}

func (r *attrReader) choices(key string) []any {
	raw, ok := r.attrs[key]
	if !ok {
		r.fail(key, "missing")
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		r.fail(key, "want a list, got %s", clip(string(raw)))
		return nil
	}
	out := make([]any, len(items))
	for i, it := range items {
		v, err := jsonScalar(it)
		if err != nil {
			r.fail(key, "choice %d: %v", i, err)
			return nil
		}
		out[i] = v
	}
	return out
}

// jsonScalar decodes one JSON scalar the way Python would type it: integer
// literals become int64, other numbers float64.
func jsonScalar(raw json.RawMessage) (any, error) {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "null":
		return nil, nil
	case s == "true":
		return true, nil
	case s == "false":
		return false, nil
	case strings.HasPrefix(s, `"`):
		var str string
		err := json.Unmarshal(raw, &str)
		return str, err
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f, nil
	}
	return nil, fmt.Errorf("want null, bool, number or string, got %s", clip(s))
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
