// Package shareddata finds the project's shared data sets (../shared/data
// next to the repository) for tests and benchmarks. Tests that need them
// skip when they are absent (a user's fresh clone) and fail instead when
// RAGTUNE_REQUIRE_SHARED=1 (CI).
package shareddata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the absolute path of ../shared/data/<rel...>, or skips (or
// fails, under RAGTUNE_REQUIRE_SHARED=1) the test when it does not exist.
func Dir(t testing.TB, rel ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	p := filepath.Join(append([]string{repo, "..", "shared", "data"}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
			t.Fatalf("shared data %s is required (RAGTUNE_REQUIRE_SHARED=1): %v", p, err)
		}
		t.Skipf("shared data %s absent: %v", p, err)
	}
	abs, _ := filepath.Abs(p)
	return abs
}
