package bindings

import (
	"os"
	"strings"
	"testing"
)

// Tests that load the GPU backend libraries live in bindings/devicetest:
// a loaded library changes the CPU results of llama.cpp's sampling in this
// package's generation tests (see docs/ARCHITECTURE.md).

// TestSourceIDMatchesGoSum keeps the id test binaries use equal to the
// module go.mod requires, with go.sum's checksum.
func TestSourceIDMatchesGoSum(t *testing.T) {
	sums, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	id := SourceID()
	mod, sum, _ := strings.Cut(id, " ")
	path, version, _ := strings.Cut(mod, "@")
	if !strings.Contains(string(sums), "\n"+path+" "+version+" "+sum+"\n") {
		t.Fatalf("SourceID() = %q is not in go.sum: update ggmlSourceID", id)
	}
}

func TestCPUDevice(t *testing.T) {
	devs := Devices()
	if len(devs) == 0 || !devs[0].IsCPU() {
		t.Fatalf("Devices() = %v, want the CPU first", devs)
	}
	d, err := SelectDevice("cpu")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "CPU" || d.Kind() != "cpu" || d.Index() != 0 || d.Spec() != "cpu" {
		t.Fatalf("cpu device: name %q kind %q index %d spec %q", d.Name(), d.Kind(), d.Index(), d.Spec())
	}
	if free, total := d.Memory(); total == 0 || free > total {
		t.Fatalf("cpu memory: free %d total %d", free, total)
	}
	be, err := d.NewBackend(2)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if be.Name() != "CPU" {
		t.Fatalf("backend name %q", be.Name())
	}
}

func TestSelectDeviceRejectsBadSpecs(t *testing.T) {
	for spec, want := range map[string]string{
		"tpu":      "unknown device",
		"cpu:0":    "takes no index",
		"vulkan:x": "bad device index",
		"cuda:-1":  "bad device index",
	} {
		if _, err := SelectDevice(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SelectDevice(%q) = %v, want an error with %q", spec, err, want)
		}
	}
}
