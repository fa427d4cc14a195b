// Package devicetest picks the device that tests of device code run on:
// $RAGTUNE_DEVICE (default vulkan, which here is Mesa's lavapipe).
//
// Import it from a test and call Device; without the device's library the
// test skips, or fails when RAGTUNE_REQUIRE_SHARED=1 (CI) or when
// RAGTUNE_DEVICE names the device explicitly (scripts/gpu-check).
package devicetest

import (
	"os"
	"testing"

	"github.com/ragtune/ragtune/bindings"
)

// ggml's Vulkan backend ignores CPU-type devices (lavapipe) unless they are
// named; this must happen before the first bindings.LoadBackends, so at import.
func init() {
	if _, ok := os.LookupEnv("GGML_VK_VISIBLE_DEVICES"); !ok {
		os.Setenv("GGML_VK_VISIBLE_DEVICES", "0")
	}
}

// Spec is the device tests run on.
func Spec() string {
	if s := os.Getenv("RAGTUNE_DEVICE"); s != "" {
		return s
	}
	return "vulkan"
}

// Device returns the test device, or skips (fails where it is required).
func Device(t testing.TB) bindings.Device {
	t.Helper()
	d, err := bindings.SelectDevice(Spec())
	if err == nil {
		return d
	}
	if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" || os.Getenv("RAGTUNE_DEVICE") != "" {
		t.Fatalf("device %s: %v", Spec(), err)
	}
	t.Skipf("device %s: %v", Spec(), err)
	return bindings.Device{}
}
