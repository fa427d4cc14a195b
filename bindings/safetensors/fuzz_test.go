package safetensors

import (
	"bytes"
	"testing"
)

// FuzzRead: no input makes the reader panic, and whatever it accepts can be
// read tensor by tensor and written back to an identical parse.
func FuzzRead(f *testing.F) {
	valid := encode(f, sample(f))
	f.Add(valid)
	for _, n := range []int{0, 7, 8, 9, 20, len(valid) / 2, len(valid) - 1} {
		f.Add(valid[:n])
	}
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		rebuilt := NewBuilder()
		for k, v := range file.Metadata {
			rebuilt.SetMetadata(k, v)
		}
		for _, ti := range file.Tensors {
			raw, err := file.Data(ti.Name)
			if err != nil {
				t.Fatalf("accepted tensor %q unreadable: %v", ti.Name, err)
			}
			if ti.DType.Float() {
				if _, err := ToFloat32(ti.DType, raw); err != nil {
					t.Fatalf("accepted tensor %q does not convert: %v", ti.Name, err)
				}
			}
			if err := rebuilt.Add(ti.Name, ti.DType, ti.Shape, func() ([]byte, error) { return raw, nil }); err != nil {
				t.Fatalf("accepted tensor %q does not rebuild: %v", ti.Name, err)
			}
		}
		var buf bytes.Buffer
		if _, err := rebuilt.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("rewritten file refused: %v", err)
		}
		if len(again.Tensors) != len(file.Tensors) || len(again.Metadata) != len(file.Metadata) {
			t.Fatalf("rewrite changed the contents")
		}
	})
}
