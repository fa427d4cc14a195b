package gguf

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzRead: no input makes the reader panic, and whatever it accepts can be
// read in full, validated, and written back to an identical parse.
// Crashers found by `go test -fuzz FuzzRead` live in testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	valid := encode(f, tinyBert(f))
	f.Add(valid)
	for _, n := range []int{0, 3, 4, 8, 24, 40, 100, 1000, len(valid) / 2, len(valid) - 40} {
		f.Add(valid[:n])
	}
	small := NewBuilder()
	small.MustSet("general.architecture", Of("llama"))
	small.MustSet("a", ArrayOf([]string{"x", "y"}))
	small.AddTensor("q", Q8_0, []int64{32}, make([]byte, 34))
	small.AddTensor("k", Q4_K, []int64{256}, make([]byte, 144))
	f.Add(encode(f, small))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parseBytes(data)
		if err != nil {
			return
		}
		_, _ = ValidateModel(file, "")
		rebuilt := NewBuilder()
		for _, kv := range file.KVs {
			if err := rebuilt.Set(kv.Key, kv.Value); err != nil {
				t.Fatalf("accepted key %q does not rebuild: %v", kv.Key, err)
			}
		}
		for _, ti := range file.Tensors {
			raw, err := file.TensorData(ti.Name)
			if err != nil {
				t.Fatalf("accepted tensor %q unreadable: %v", ti.Name, err)
			}
			_, _ = Decode(ti.Type, raw, ti.Elements())
			if err := rebuilt.AddTensor(ti.Name, ti.Type, ti.Dims, raw); err != nil {
				t.Fatalf("accepted tensor %q does not rebuild: %v", ti.Name, err)
			}
		}
		var buf bytes.Buffer
		if _, err := rebuilt.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := parseBytes(buf.Bytes())
		if err != nil {
			t.Fatalf("rewritten file refused: %v", err)
		}
		if fmt.Sprint(again.KVs) != fmt.Sprint(file.KVs) || len(again.Tensors) != len(file.Tensors) {
			t.Fatalf("rewrite changed the metadata")
		}
	})
}
