package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyBert builds the smallest bert model llama.cpp loads: E=32, one layer,
// two heads, a 7-token vocabulary with every special id set.
func tinyBert(t testing.TB) *Builder {
	t.Helper()
	const E, F, P = 32, 64, 8
	tokens := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "▁a", "b"}
	b := NewBuilder()
	set := func(k string, v Value) {
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	set("general.architecture", Of("bert"))
	set("general.name", Of("tiny"))
	set("bert.context_length", Of(uint32(P)))
	set("bert.embedding_length", Of(uint32(E)))
	set("bert.block_count", Of(uint32(1)))
	set("bert.feed_forward_length", Of(uint32(F)))
	set("bert.attention.head_count", Of(uint32(2)))
	set("bert.attention.layer_norm_epsilon", Of(float32(1e-12)))
	set("bert.attention.causal", Of(false))
	set("bert.pooling_type", Of(uint32(PoolingMean)))
	set("tokenizer.ggml.model", Of("bert"))
	set("tokenizer.ggml.tokens", ArrayOf(tokens))
	set("tokenizer.ggml.token_type", ArrayOf([]int32{3, 3, 3, 3, 3, 1, 1}))
	set("tokenizer.ggml.token_type_count", Of(uint32(2)))
	for k, id := range map[string]uint32{"padding": 0, "unknown": 1, "bos": 2, "seperator": 3, "mask": 4} {
		set("tokenizer.ggml."+k+"_token_id", Of(id))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	add := func(name string, dims ...int64) {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.02)
		}
		if err := b.AddTensor(name, F32, dims, EncodeF32(v)); err != nil {
			t.Fatal(err)
		}
	}
	add("token_embd.weight", E, int64(len(tokens)))
	add("token_types.weight", E, 2)
	add("position_embd.weight", E, P)
	add("token_embd_norm.weight", E)
	add("token_embd_norm.bias", E)
	for _, n := range []string{"attn_q", "attn_k", "attn_v", "attn_output"} {
		add("blk.0."+n+".weight", E, E)
		add("blk.0."+n+".bias", E)
	}
	add("blk.0.attn_output_norm.weight", E)
	add("blk.0.attn_output_norm.bias", E)
	add("blk.0.ffn_up.weight", E, F)
	add("blk.0.ffn_up.bias", F)
	add("blk.0.ffn_down.weight", F, E)
	add("blk.0.ffn_down.bias", E)
	add("blk.0.layer_output_norm.weight", E)
	add("blk.0.layer_output_norm.bias", E)
	return b
}

func encode(t testing.TB, b *Builder) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func parseBytes(data []byte) (*File, error) { return Read(bytes.NewReader(data), int64(len(data))) }

func TestRoundTripAllValueTypes(t *testing.T) {
	b := NewBuilder()
	values := map[string]Value{
		"u8": Of(uint8(200)), "i8": Of(int8(-3)), "u16": Of(uint16(60000)), "i16": Of(int16(-300)),
		"u32": Of(uint32(1 << 31)), "i32": Of(int32(-7)), "f32": Of(float32(1.5)), "bool": Of(true),
		"str": Of("héllo"), "u64": Of(uint64(1 << 63)), "i64": Of(int64(-1 << 40)), "f64": Of(math.Pi),
		"a.u8": ArrayOf([]uint8{1, 2}), "a.i8": ArrayOf([]int8{-1}), "a.u16": ArrayOf([]uint16{9}),
		"a.i16": ArrayOf([]int16{-9}), "a.u32": ArrayOf([]uint32{1, 2, 3}), "a.i32": ArrayOf([]int32{-1, 1}),
		"a.f32": ArrayOf([]float32{0.5}), "a.bool": ArrayOf([]bool{true, false}),
		"a.str": ArrayOf([]string{"", "x", "▁y"}), "a.u64": ArrayOf([]uint64{7}), "a.i64": ArrayOf([]int64{-7}),
		"a.f64": ArrayOf([]float64{2.5}), "a.empty": ArrayOf([]string{}),
	}
	var keys []string
	for k, v := range values {
		keys = append(keys, k)
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddTensor("w", F16, []int64{4, 2, 1}, EncodeF16([]float32{1, 2, 3, 4, 5, 6, 7, -0.5})); err != nil {
		t.Fatal(err)
	}
	if err := b.AddTensor("z", F32, []int64{3}, EncodeF32([]float32{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	data := encode(t, b)
	if len(data)%32 != 0 {
		t.Errorf("file size %d is not padded to 32", len(data))
	}
	f, err := parseBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, kv := range f.KVs {
		if kv.Key != keys[i] {
			t.Errorf("key %d is %q, want %q (order as set)", i, kv.Key, keys[i])
		}
		want := values[kv.Key]
		if kv.Value.Type != want.Type || kv.Value.ElemType != want.ElemType || fmt.Sprint(kv.Value.Any()) != fmt.Sprint(want.Any()) {
			t.Errorf("%s: got %s %v, want %s %v", kv.Key, kv.Value.TypeName(), kv.Value, want.TypeName(), want)
		}
	}
	w, _ := f.Tensor("w")
	if len(w.Dims) != 2 || w.Dims[0] != 4 || w.Dims[1] != 2 || w.Offset != 0 || w.Size != 16 {
		t.Errorf("tensor w: %+v (trailing 1 should be dropped)", w)
	}
	z, _ := f.Tensor("z")
	if z.Offset != 32 {
		t.Errorf("tensor z offset %d, want 32", z.Offset)
	}
	got, err := f.Float32s("w")
	if err != nil || fmt.Sprint(got) != "[1 2 3 4 5 6 7 -0.5]" {
		t.Errorf("Float32s(w) = %v, %v", got, err)
	}
	if _, _, err := f.Uint32("i32"); !errors.Is(err, ErrWrongType) {
		t.Errorf("Uint32 on an i32 key: err = %v, want ErrWrongType", err)
	}
	if _, _, err := LookupArray[uint32](f, "a.i32"); !errors.Is(err, ErrWrongType) {
		t.Errorf("u32 array on an i32 array: err = %v", err)
	}
	if v, ok, err := f.Uint32("u32"); v != 1<<31 || !ok || err != nil {
		t.Errorf("Uint32(u32) = %v %v %v", v, ok, err)
	}
	if _, ok, err := f.Uint32("absent"); ok || err != nil {
		t.Errorf("absent key: ok=%v err=%v", ok, err)
	}
}

func TestWriteFileAndOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := tinyBert(t).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hp, err := ValidateModel(f, "bert")
	if err != nil {
		t.Fatal(err)
	}
	if hp.Embd != 32 || hp.Layers != 1 || hp.Vocab != 7 || hp.Pooling != PoolingMean || hp.HeadDimK != 16 || hp.TokenTypes != 2 {
		t.Errorf("hparams: %+v", hp)
	}
	if f.DataOffset%32 != 0 || f.Size()%32 != 0 {
		t.Errorf("data offset %d, size %d: not aligned", f.DataOffset, f.Size())
	}
}

// TestRefusals: each case breaks a valid model in one way; the error must
// name the problem.
func TestRefusals(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(b *Builder) *Builder
		arch  string
		wants string
	}{
		{"wrong arch asked", nil, "llama", `architecture is "bert", expected "llama"`},
		{"unknown arch", func(b *Builder) *Builder { b.MustSet("general.architecture", Of("gpt-j")); return b }, "", "unsupported architecture"},
		{"missing arch", func(b *Builder) *Builder { b.Delete("general.architecture"); return b }, "", `missing key "general.architecture"`},
		{"u32 stored as i32", func(b *Builder) *Builder { b.MustSet("bert.block_count", Of(int32(1))); return b }, "", `"bert.block_count" has wrong type: i32, expected u32`},
		{"eps as f64", func(b *Builder) *Builder {
			b.MustSet("bert.attention.layer_norm_epsilon", Of(1e-12))
			return b
		}, "", "layer_norm_epsilon"},
		{"missing causal", func(b *Builder) *Builder { b.Delete("bert.attention.causal"); return b }, "", `"bert.attention.causal"`},
		{"missing ff", func(b *Builder) *Builder { b.Delete("bert.feed_forward_length"); return b }, "", `"bert.feed_forward_length"`},
		{"ff array wrong length", func(b *Builder) *Builder {
			b.MustSet("bert.feed_forward_length", ArrayOf([]uint32{64, 64}))
			return b
		}, "", "wrong array length"},
		{"missing special ids", func(b *Builder) *Builder { b.Delete("tokenizer.ggml.bos_token_id"); return b }, "", "bos token id 101 is outside"},
		{"duplicate token", func(b *Builder) *Builder {
			b.MustSet("tokenizer.ggml.tokens", ArrayOf([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "b", "b"}))
			return b
		}, "", `token "b" appears at ids 5 and 6`},
		{"token_type as u32", func(b *Builder) *Builder {
			b.MustSet("tokenizer.ggml.token_type", ArrayOf([]uint32{3, 3, 3, 3, 3, 1, 1}))
			return b
		}, "", "array[i32]"},
		{"missing token_type_count", func(b *Builder) *Builder { b.Delete("tokenizer.ggml.token_type_count"); return b }, "", "token_type_count"},
		{"missing tensor", func(b *Builder) *Builder { return without(b, "blk.0.ffn_up.weight") }, "", `missing tensor "blk.0.ffn_up.weight"`},
		{"extra tensor", func(b *Builder) *Builder {
			b.AddTensor("pooler.dense.weight", F32, []int64{1}, make([]byte, 4))
			return b
		}, "", `unexpected tensor "pooler.dense.weight"`},
		{"wrong shape", func(b *Builder) *Builder {
			b = without(b, "blk.0.ffn_down.bias")
			b.AddTensor("blk.0.ffn_down.bias", F32, []int64{16}, make([]byte, 64))
			return b
		}, "", `"blk.0.ffn_down.bias" has wrong shape [16], expected [32]`},
		{"adapter", func(b *Builder) *Builder { b.MustSet("general.type", Of("adapter")); return b }, "", "adapter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := tinyBert(t)
			if c.edit != nil {
				b = c.edit(b)
			}
			f, err := parseBytes(encode(t, b))
			if err == nil {
				_, err = ValidateModel(f, c.arch)
			}
			if err == nil || !strings.Contains(err.Error(), c.wants) {
				t.Fatalf("error %v, want one containing %q", err, c.wants)
			}
		})
	}
}

// without rebuilds b without one tensor.
func without(b *Builder, name string) *Builder {
	nb := NewBuilder()
	for _, kv := range b.kvs {
		nb.MustSet(kv.Key, kv.Value)
	}
	for _, t := range b.tensors {
		if t.info.Name != name {
			nb.AddTensorFunc(t.info.Name, t.info.Type, t.info.Dims, t.data)
		}
	}
	return nb
}

// TestTruncated: every prefix of a valid file is refused with an error (never a panic).
func TestTruncated(t *testing.T) {
	data := encode(t, tinyBert(t))
	f, err := parseBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors[len(f.Tensors)-1]
	end := f.DataOffset + int64(last.Offset) + last.Size
	// Every prefix of the header; through the data, every 97th.
	for n := 0; n < int(end); n++ {
		if n > int(f.DataOffset) && n%97 != 0 {
			continue
		}
		if _, err := parseBytes(data[:n]); err == nil {
			t.Fatalf("prefix of %d bytes (of %d) accepted", n, len(data))
		}
	}
	// Missing only the final padding: llama.cpp's loader accepts it, so do we.
	if _, err := parseBytes(data[:end]); err != nil {
		t.Errorf("file without final padding: %v", err)
	}
	_, err = parseBytes(data[:end-1])
	if err == nil || !strings.Contains(err.Error(), "extends past the end of the file") {
		t.Errorf("truncated data: %v", err)
	}
}

func TestGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		junk := make([]byte, rng.IntN(4096))
		for j := range junk {
			junk[j] = byte(rng.UintN(256))
		}
		if i%2 == 0 && len(junk) > 8 {
			copy(junk, "GGUF\x03\x00\x00\x00")
		}
		if _, err := parseBytes(junk); err == nil {
			t.Errorf("garbage %d accepted", i)
		}
	}
	_, err := parseBytes([]byte("PK\x03\x04 a zip file"))
	if err == nil || !strings.Contains(err.Error(), "not a GGUF file") {
		t.Errorf("zip: %v", err)
	}
}

// rawFile writes a GGUF header by hand, for layouts the Builder refuses to make.
func rawFile(version uint32, nTensors, nKV uint64, body func(e *encoder)) []byte {
	var buf bytes.Buffer
	e := encoder{w: &countWriter{w: &buf}}
	e.bytes([]byte(Magic))
	e.u32(version)
	e.u64(nTensors)
	e.u64(nKV)
	body(&e)
	return buf.Bytes()
}

func tensorInfo(e *encoder, name string, typ TensorType, off uint64, dims ...uint64) {
	e.str(name)
	e.u32(uint32(len(dims)))
	for _, d := range dims {
		e.u64(d)
	}
	e.u32(uint32(typ))
	e.u64(off)
}

func TestFormatRefusals(t *testing.T) {
	withData := func(hdr []byte, n int) []byte {
		p, _ := padUp(uint64(len(hdr)), 32)
		return append(append(hdr, make([]byte, int(p)-len(hdr))...), make([]byte, n)...)
	}
	cases := []struct {
		name  string
		data  []byte
		wants string
	}{
		{"version 1", rawFile(1, 0, 0, func(*encoder) {}), "version 1"},
		{"version 0", rawFile(0, 0, 0, func(*encoder) {}), "version 0"},
		{"version 4", rawFile(4, 0, 0, func(*encoder) {}), "newer"},
		{"big endian", rawFile(3<<24, 0, 0, func(*encoder) {}), "byte-swapped"},
		{"huge tensor count", rawFile(3, 1<<40, 0, func(*encoder) {}), "tensor count"},
		{"huge kv count", rawFile(3, 0, 1<<62, func(*encoder) {}), "metadata count"},
		{"duplicate key", rawFile(3, 0, 2, func(e *encoder) {
			e.str("k")
			e.value(Of(uint32(1)))
			e.str("k")
			e.value(Of(uint32(2)))
		}), `duplicate key "k"`},
		{"bad value type", rawFile(3, 0, 1, func(e *encoder) { e.str("k"); e.u32(13); e.u32(0) }), `key "k" has invalid type 13`},
		{"array of arrays", rawFile(3, 0, 1, func(e *encoder) { e.str("k"); e.u32(9); e.u32(9); e.u64(0) }), "array of arrays"},
		{"huge array", rawFile(3, 0, 1, func(e *encoder) { e.str("k"); e.u32(9); e.u32(8); e.u64(1 << 60) }), "cannot fit"},
		{"huge string", rawFile(3, 0, 1, func(e *encoder) { e.str("k"); e.u32(8); e.u64(1 << 60) }), "has length"},
		{"alignment i32", rawFile(3, 0, 1, func(e *encoder) { e.str(KeyAlignment); e.value(Of(int32(32))) }), "must be u32"},
		{"alignment 48", rawFile(3, 0, 1, func(e *encoder) { e.str(KeyAlignment); e.value(Of(uint32(48))) }), "power of two"},
		{"long name", rawFile(3, 1, 0, func(e *encoder) { tensorInfo(e, strings.Repeat("x", 64), F32, 0, 1) }), "at most 63"},
		{"duplicate tensor", withData(rawFile(3, 2, 0, func(e *encoder) {
			tensorInfo(e, "t", F32, 0, 1)
			tensorInfo(e, "t", F32, 32, 1)
		}), 64), `duplicate tensor name "t"`},
		{"5 dims", rawFile(3, 1, 0, func(e *encoder) { tensorInfo(e, "t", F32, 0, 1, 1, 1, 1, 1) }), "5 dimensions"},
		{"0 dims", rawFile(3, 1, 0, func(e *encoder) { tensorInfo(e, "t", F32, 0); e.u64(0); e.u64(0) }), "0 dimensions"},
		{"negative dim", rawFile(3, 1, 0, func(e *encoder) { tensorInfo(e, "t", F32, 0, 1<<63) }), "must be positive"},
		{"zero dim", rawFile(3, 1, 0, func(e *encoder) { tensorInfo(e, "t", F32, 0, 4, 0) }), "must be positive"},
		{"overflow", rawFile(3, 1, 0, func(e *encoder) { tensorInfo(e, "t", F32, 0, 1<<32, 1<<32) }), "overflows"},
		{"removed type", rawFile(3, 1, 0, func(e *encoder) { tensorInfo(e, "t", 4, 0, 32) }), "invalid ggml type 4"},
		{"row not block multiple", rawFile(3, 1, 0, func(e *encoder) { tensorInfo(e, "t", Q8_0, 0, 48) }), "not a multiple of the block size 32"},
		{"gap in offsets", withData(rawFile(3, 2, 0, func(e *encoder) {
			tensorInfo(e, "a", F32, 0, 1)
			tensorInfo(e, "b", F32, 64, 1)
		}), 96), `"b" has offset 64, expected 32`},
		{"unaligned first offset", withData(rawFile(3, 1, 0, func(e *encoder) { tensorInfo(e, "a", F32, 4, 1) }), 64), "expected 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseBytes(c.data)
			var fe *FormatError
			if err == nil || !strings.Contains(err.Error(), c.wants) || !errors.As(err, &fe) {
				t.Fatalf("error %v, want a FormatError containing %q", err, c.wants)
			}
		})
	}
}

func TestVersion2IsRead(t *testing.T) {
	data := encode(t, tinyBert(t))
	data[4] = 2
	f, err := parseBytes(data)
	if err != nil || f.Version != 2 {
		t.Fatalf("v2: %v", err)
	}
}

func TestAlignmentKeyIsHonoured(t *testing.T) {
	b := NewBuilder()
	b.MustSet(KeyAlignment, Of(uint32(64)))
	b.AddTensor("a", F32, []int64{1}, make([]byte, 4))
	b.AddTensor("b", F32, []int64{1}, make([]byte, 4))
	f, err := parseBytes(encode(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 || f.Tensors[1].Offset != 64 || f.Size()%64 != 0 {
		t.Errorf("alignment %d, data offset %d, second offset %d, size %d", f.Alignment, f.DataOffset, f.Tensors[1].Offset, f.Size())
	}
}

func TestBuilderRefusals(t *testing.T) {
	b := NewBuilder()
	if err := b.AddTensor("q", Q8_0, []int64{48, 2}, make([]byte, 10)); err == nil || !strings.Contains(err.Error(), "block size 32") {
		t.Errorf("q8_0 with 48 columns: %v", err)
	}
	if err := b.AddTensor("f", F32, []int64{2}, make([]byte, 4)); err == nil {
		t.Error("short data accepted")
	}
	if err := b.AddTensor(strings.Repeat("n", 64), F32, []int64{1}, make([]byte, 4)); err == nil {
		t.Error("64-byte name accepted")
	}
	if err := b.Set(KeyAlignment, Of(uint32(3))); err == nil {
		t.Error("alignment 3 accepted")
	}
	if err := b.Set("k", Value{}); err == nil {
		t.Error("zero Value accepted")
	}
}

func TestF16(t *testing.T) {
	cases := map[float32]uint16{0: 0, 1: 0x3C00, -2: 0xC000, 65504: 0x7BFF, 65520: 0x7C00, 1e-8: 0,
		5.960464477539063e-08: 1, 6.103515625e-05: 0x0400, 0.33325195: 0x3555, float32(math.Inf(-1)): 0xFC00}
	for f, h := range cases {
		if got := Float32ToF16(f); got != h {
			t.Errorf("Float32ToF16(%g) = %#04x, want %#04x", f, got, h)
		}
	}
	// Every half value converts to float32 and back unchanged.
	for h := 0; h < 1<<16; h++ {
		f := F16ToFloat32(uint16(h))
		if f != f { // NaN
			continue
		}
		if back := Float32ToF16(f); back != uint16(h) {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, back)
		}
	}
	// Ties go to even: 1 + 2^-11 lies halfway between 1 and 1+2^-10.
	if got := Float32ToF16(1 + 1.0/2048); got != 0x3C00 {
		t.Errorf("tie rounded to %#04x", got)
	}
}

func TestOpenMissing(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "nope.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}
