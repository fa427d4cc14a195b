package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// The doctor tests look for libraries in an empty cache: loading a backend
// library would bring its driver into every later test of this process.
func TestDoctorJSON(t *testing.T) {
	t.Setenv("RAGTUNE_CACHE", t.TempDir())
	out, err := runCLI(t, "doctor", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(rep.Devices) == 0 || rep.Devices[0].Spec != "cpu" || rep.Devices[0].MemoryTotal == 0 {
		t.Fatalf("devices %+v, want the CPU first with its memory", rep.Devices)
	}
	kinds := map[string]bool{}
	for _, lib := range rep.Libraries {
		kinds[lib.Kind] = true
		if !lib.Loaded && lib.Reason == "" {
			t.Errorf("library %+v not loaded without a reason", lib)
		}
	}
	if !kinds["cuda"] || !kinds["vulkan"] {
		t.Errorf("libraries %+v, want cuda and vulkan reported", rep.Libraries)
	}
	if rep.Commands["train"] != rep.Device || rep.Device == "" || !strings.HasPrefix(rep.GGMLSources, "github.com/ollama/ollama@") {
		t.Errorf("report %+v", rep)
	}
	text, err := runCLI(t, "doctor", "--device", "cpu")
	if err != nil || !strings.Contains(text, "--device cpu") || !strings.Contains(text, "backend libraries") {
		t.Fatalf("doctor text: %v\n%s", err, text)
	}
}

// TestDeviceCUDAWithoutLibrary: what a user without the CUDA library sees.
func TestDeviceCUDAWithoutLibrary(t *testing.T) {
	t.Setenv("RAGTUNE_CACHE", t.TempDir())
	out, err := runCLI(t, "doctor", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "libggml-cuda.so") {
		t.Skip("a CUDA library is present")
	}
	_, err = runCLI(t, "doctor", "--device", "cuda:1")
	if err == nil {
		t.Fatal("--device cuda:1 accepted without a CUDA library")
	}
	for _, want := range []string{"--device cuda:1: no CUDA backend library found", "make cuda"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
