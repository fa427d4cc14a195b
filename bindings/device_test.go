package bindings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ggml's Vulkan backend ignores CPU-type devices such as lavapipe unless
// they are named, and LoadBackends runs once per process: name it first.
func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv("GGML_VK_VISIBLE_DEVICES"); !ok {
		os.Setenv("GGML_VK_VISIBLE_DEVICES", "0")
	}
	os.Exit(m.Run())
}

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
	auto, err := SelectDevice("auto")
	if err != nil {
		t.Fatal(err)
	}
	if gpus := len(Devices()) > 1; gpus == auto.IsCPU() {
		t.Fatalf("auto picked %s with devices %v", auto.Name(), Devices())
	}
}

func TestSelectDeviceRejectsBadSpecs(t *testing.T) {
	for spec, want := range map[string]string{
		"tpu":       "unknown device",
		"cpu:0":     "takes no index",
		"vulkan:x":  "bad device index",
		"cuda:-1":   "bad device index",
		"vulkan:99": "vulkan",
	} {
		if _, err := SelectDevice(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SelectDevice(%q) = %v, want an error with %q", spec, err, want)
		}
	}
}

// TestMissingCUDALibrary checks the message a user without the library gets.
func TestMissingCUDALibrary(t *testing.T) {
	for _, lib := range LoadBackends() {
		if lib.Kind == "cuda" && lib.Path != "" {
			t.Skipf("a CUDA library is present: %s", lib.Path)
		}
	}
	_, err := SelectDevice("cuda")
	if err == nil {
		t.Fatal("cuda selected without a CUDA library")
	}
	for _, want := range []string{"no CUDA backend library found", "libggml-cuda.so", "make cuda", "RAGTUNE_BACKEND_DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestSourceIDCheck opens the Vulkan library built by scripts/build-backend
// (it carries the source id): accepted for this binary's sources, refused
// for others; a ggml library without the id is refused as well.
func TestSourceIDCheck(t *testing.T) {
	path := ""
	for _, lib := range LoadBackends() {
		if lib.Kind == "vulkan" && lib.Loaded {
			path = lib.Path
		}
	}
	if path == "" {
		if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
			t.Fatalf("no Vulkan library loaded: %+v (build it with make vulkan)", LoadBackends())
		}
		t.Skipf("no Vulkan library loaded: %+v", LoadBackends())
	}
	if err := checkLibrary(path, SourceID()); err != nil {
		t.Fatalf("own library refused: %v", err)
	}
	other := "github.com/ollama/ollama@v0.17.3 h1:other"
	if err := checkLibrary(path, other); err == nil || !strings.Contains(err.Error(), "built from other ggml sources") {
		t.Fatalf("library accepted by a binary of other sources: %v", err)
	}
	if err := checkLibrary(filepath.Join(filepath.Dir(path), "libggml-base.so.0"), SourceID()); err == nil || !strings.Contains(err.Error(), "not built by ragtune") {
		t.Fatalf("a library without the id: %v", err)
	}
	if err := checkLibrary(filepath.Join(t.TempDir(), "libggml-vulkan.so"), SourceID()); err == nil || !strings.Contains(err.Error(), "cannot be opened") {
		t.Fatalf("a missing file: %v", err)
	}
}
