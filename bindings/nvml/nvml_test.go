package nvml

import (
	"errors"
	"strings"
	"testing"
)

// An absent library is an error that says which names were tried; the
// process goes on.
func TestOpenAbsentLibrary(t *testing.T) {
	_, err := Open("libnvidia-ml-absent.so.1", "/nonexistent/libnvidia-ml.so")
	if err == nil || !strings.Contains(err.Error(), "libnvidia-ml-absent.so.1") {
		t.Fatalf("want an error naming the library, got %v", err)
	}
}

// A library that loads but is not NVML (libc) is refused before any call.
func TestOpenLibraryWithoutNVML(t *testing.T) {
	_, err := Open("libc.so.6")
	if err == nil || !strings.Contains(err.Error(), "lacks nvmlInit_v2") {
		t.Fatalf("want a missing-symbol error, got %v", err)
	}
}

// On a machine with a GPU driver the readings must be sane; elsewhere the
// test says why it skipped.
func TestReadingsWhereADriverIsInstalled(t *testing.T) {
	l, err := Open()
	if err != nil {
		t.Skipf("no NVML here: %v", err)
	}
	defer l.Close()
	devs, err := l.Devices()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		w, err := d.PowerWatts()
		if err != nil || w <= 0 || w > 2000 {
			t.Errorf("gpu %d (%s): power %v W, %v", d.Index, d.Name, w, err)
		}
		if j, err := d.EnergyJoules(); err != nil && !errors.Is(err, ErrNotSupported) || err == nil && j <= 0 {
			t.Errorf("gpu %d: energy %v J, %v", d.Index, j, err)
		}
		used, total, err := d.Memory()
		if err != nil || total == 0 || used > total {
			t.Errorf("gpu %d: memory %d of %d, %v", d.Index, used, total, err)
		}
		if g, m, err := d.Utilization(); err != nil || g < 0 || g > 100 || m < 0 || m > 100 {
			t.Errorf("gpu %d: utilisation %d%% %d%%, %v", d.Index, g, m, err)
		}
		t.Logf("gpu %d %s: %.1f W", d.Index, d.Name, w)
	}
}
