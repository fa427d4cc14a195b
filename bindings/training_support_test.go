package bindings

import (
	"strings"
	"testing"
)

// Segmented training is refused on lavapipe before Mesa 25 only, and on a
// lavapipe whose version cannot be told.
func TestSegmentedTrainingRule(t *testing.T) {
	for _, c := range []struct {
		description string
		drv         Driver
		refused     bool
	}{
		{"llvmpipe (LLVM 15.0.6, 256 bits)", Driver{13, "llvmpipe", "Mesa 22.3.6 (LLVM 15.0.6)"}, true},
		{"llvmpipe (LLVM 15.0.6, 256 bits)", Driver{13, "llvmpipe", "Mesa 24.2.8-1 (LLVM 15.0.6)"}, true},
		{"llvmpipe (LLVM 15.0.6, 256 bits)", Driver{13, "llvmpipe", "Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)"}, false},
		{"llvmpipe (LLVM 19.1.7, 256 bits)", Driver{13, "llvmpipe", "Mesa 100.0.0"}, false},
		{"llvmpipe (LLVM 15.0.6, 256 bits)", Driver{}, true}, // a library without the driver query
		{"AMD Radeon RX 7900 XTX (RADV NAVI31)", Driver{3, "radv", "Mesa 22.3.6"}, false},
		{"NVIDIA GeForce RTX 4090", Driver{4, "NVIDIA", "570.86.15"}, false},
	} {
		err := segmentedTraining(c.description, c.drv)
		if (err != nil) != c.refused {
			t.Errorf("%s, %+v: refused %v (%v)", c.description, c.drv, err != nil, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--recompute off") {
			t.Errorf("the refusal does not say what to do: %v", err)
		}
	}
}
