package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample(t testing.TB) *Builder {
	t.Helper()
	b := NewBuilder()
	b.SetMetadata("format", "pt")
	must(t, b.AddFloat32s("a.weight", F32, []int64{2, 3}, []float32{1, -2, 3.5, 0, 1e-3, -7}))
	must(t, b.AddFloat32s("b.half", F16, []int64{4}, []float32{0.5, -1, 2048, 1.0 / 3}))
	must(t, b.AddFloat32s("c.bf", BF16, []int64{1, 3}, []float32{1, 1.0 / 3, -65536}))
	must(t, b.Add("ids", I64, []int64{2}, func() ([]byte, error) {
		out := make([]byte, 16)
		binary.LittleEndian.PutUint64(out[8:], 1)
		return out, nil
	}))
	must(t, b.Add("empty", F32, []int64{0, 4}, func() ([]byte, error) { return nil, nil }))
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func encode(t testing.TB, b *Builder) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	must(t, sample(t).WriteFile(path))
	f, err := Open(path)
	must(t, err)
	defer f.Close()
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata)
	}
	if got := strings.Join(f.Names(), ","); got != "a.weight,b.half,c.bf,ids,empty" {
		t.Errorf("names in data order: %s", got)
	}
	a, err := f.Float32s("a.weight")
	must(t, err)
	if want := []float32{1, -2, 3.5, 0, 1e-3, -7}; !equal(a, want) {
		t.Errorf("a.weight %v, want %v", a, want)
	}
	h, err := f.Float32s("b.half")
	must(t, err)
	if h[0] != 0.5 || h[1] != -1 || h[2] != 2048 || math.Abs(float64(h[3])-1.0/3) > 1e-3 {
		t.Errorf("b.half %v", h)
	}
	bf, err := f.Float32s("c.bf")
	must(t, err)
	// 1/3 in bf16 is 0x3EAB (round to nearest): 0.333984375.
	if bf[0] != 1 || bf[1] != 0.333984375 || bf[2] != -65536 {
		t.Errorf("c.bf %v", bf)
	}
	ti, _ := f.Tensor("c.bf")
	if ti.DType != BF16 || len(ti.Shape) != 2 || ti.Shape[1] != 3 {
		t.Errorf("c.bf info %+v", ti)
	}
	if _, err := f.Float32s("ids"); err == nil || !strings.Contains(err.Error(), "I64") {
		t.Errorf("ids as floats: %v", err)
	}
	raw, err := f.Data("ids")
	must(t, err)
	if binary.LittleEndian.Uint64(raw[8:]) != 1 {
		t.Errorf("ids bytes %v", raw)
	}
	st, _ := os.Stat(path)
	if hl := binary.LittleEndian.Uint64(encode(t, sample(t))[:8]); hl%8 != 0 || st.Size() < int64(8+hl) {
		t.Errorf("header length %d not padded to 8", hl)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBF16Rounding(t *testing.T) {
	for _, c := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3F80}, {-2, 0xC000}, {float32(math.Inf(1)), 0x7F80},
		{math.Float32frombits(0x3F808000), 0x3F80}, // tie, even stays
		{math.Float32frombits(0x3F818000), 0x3F82}, // tie, odd rounds up
		{math.Float32frombits(0x3F808001), 0x3F81},
	} {
		if got := Float32ToBF16(c.in); got != c.want {
			t.Errorf("bf16(%g) = %#x, want %#x", c.in, got, c.want)
		}
	}
	if nan := Float32ToBF16(float32(math.NaN())); nan&0x7F80 != 0x7F80 || nan&0x7F == 0 {
		t.Errorf("NaN became %#x", nan)
	}
}

// TestMalformed: each corruption is refused with an error that says what is wrong.
func TestMalformed(t *testing.T) {
	valid := encode(t, sample(t))
	withHeader := func(h string) []byte {
		out := make([]byte, 8, 8+len(h)+8)
		binary.LittleEndian.PutUint64(out, uint64(len(h)))
		return append(append(out, h...), make([]byte, 8)...)
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"short":          {valid[:5], "too short"},
		"huge length":    {append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0}, valid[8:]...), "does not fit"},
		"truncated data": {valid[:len(valid)-3], "outside"},
		"extra data":     {append(append([]byte{}, valid...), 1, 2), "cover"},
		"not json":       {withHeader("[1,2]   "), "not a JSON object"},
		"bad json":       {withHeader(`{"a": {`), "header JSON"},
		"dtype":          {withHeader(`{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}`), `unknown dtype "Q4"`},
		"offsets":        {withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}`), "outside"},
		"shape size":     {withHeader(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`), "needs 12 bytes"},
		"negative dim":   {withHeader(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`), "bad shape"},
		"overflow":       {withHeader(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`), "bad shape"},
		"gap":            {withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`), "gap or overlap"},
		"unknown field":  {withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`), "unknown field"},
		"offsets arity":  {withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`), "[begin, end]"},
		"metadata":       {withHeader(`{"__metadata__":{"a":1}}`), "__metadata__"},
		"trailing":       {withHeader(`{} x`), "trailing"},
	}
	for name, c := range cases {
		_, err := Read(bytes.NewReader(c.data), int64(len(c.data)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestWriterRefuses(t *testing.T) {
	b := NewBuilder()
	must(t, b.AddFloat32s("x", F32, []int64{2}, []float32{1, 2}))
	if err := b.AddFloat32s("x", F32, []int64{2}, []float32{1, 2}); err == nil {
		t.Error("duplicate name accepted")
	}
	if err := b.Add("y", "Q4", []int64{2}, nil); err == nil {
		t.Error("unknown dtype accepted")
	}
	must(t, b.AddFloat32s("short", F32, []int64{3}, []float32{1, 2}))
	path := filepath.Join(t.TempDir(), "m.safetensors")
	must(t, os.WriteFile(path, []byte("old"), 0o644))
	if err := b.WriteFile(path); err == nil || !strings.Contains(err.Error(), `"short"`) {
		t.Errorf("short tensor: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("failed write replaced the file: %q", got)
	}
}

func TestShardedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	one, two := NewBuilder(), NewBuilder()
	must(t, one.AddFloat32s("layer.0.w", BF16, []int64{2, 2}, []float32{1, 2, 3, 4}))
	must(t, two.AddFloat32s("layer.1.w", F16, []int64{2}, []float32{5, 6}))
	must(t, one.WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors")))
	must(t, two.WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors")))
	index := `{"metadata":{"total_size":12},"weight_map":{"layer.0.w":"model-00001-of-00002.safetensors","layer.1.w":"model-00002-of-00002.safetensors"}}`
	must(t, os.WriteFile(filepath.Join(dir, IndexFile), []byte(index), 0o644))
	c, err := OpenCheckpoint(dir)
	must(t, err)
	if got := strings.Join(c.Names(), ","); got != "layer.0.w,layer.1.w" {
		t.Errorf("names %s", got)
	}
	v, err := c.Float32s("layer.1.w")
	must(t, err)
	if !equal(v, []float32{5, 6}) {
		t.Errorf("layer.1.w %v", v)
	}
	c.Close()

	bad := map[string]string{
		`{"weight_map":{"layer.0.w":"../x.safetensors"}}`:                                                                "not a file name",
		`{"weight_map":{"layer.0.w":"model-00002-of-00002.safetensors","layer.1.w":"model-00002-of-00002.safetensors"}}`: `"layer.0.w" is not in`,
		`{"weight_map":{"layer.0.w":"missing.safetensors"}}`:                                                             "missing.safetensors",
		`{"weight_map":{}}`: "weight_map",
		`{"weight_map":`:    IndexFile,
	}
	for idx, want := range bad {
		must(t, os.WriteFile(filepath.Join(dir, IndexFile), []byte(idx), 0o644))
		if _, err := OpenCheckpoint(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("index %s: error %v, want %q", idx, err, want)
		}
	}
	if _, err := OpenCheckpoint(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no model.safetensors") {
		t.Errorf("empty folder: %v", err)
	}
}
