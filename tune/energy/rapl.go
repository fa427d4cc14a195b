package energy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// rapl reads the CPU packages' energy counters from Linux powercap:
// ROOT/class/powercap/intel-rapl:N/energy_uj, one zone per package (AMD
// packages appear under the same name). Sub-zones (intel-rapl:N:M: cores,
// uncore, dram) are parts of their package and are not added again; psys
// (the whole platform, on laptops) overlaps the packages and is skipped,
// as codecarbon skips it by default.
type rapl struct {
	zones  []raplZone
	joules float64 // accumulated since open
}

type raplZone struct {
	path     string // energy_uj
	maxRange uint64 // the counter wraps past this, µJ
	last     uint64
}

// openRAPL finds the package zones under root and takes a first reading.
// Since 2020 kernels make energy_uj readable by root only, so on most
// machines this fails for ordinary users and the Meter estimates instead.
func openRAPL(root string) (*rapl, error) {
	dirs, _ := filepath.Glob(filepath.Join(root, "class", "powercap", "intel-rapl:*"))
	r := &rapl{}
	for _, dir := range dirs {
		if strings.Count(filepath.Base(dir), ":") != 1 {
			continue
		}
		name, _ := os.ReadFile(filepath.Join(dir, "name"))
		if strings.TrimSpace(string(name)) == "psys" {
			continue
		}
		z := raplZone{path: filepath.Join(dir, "energy_uj")}
		var err error
		if z.maxRange, err = readMicrojoules(filepath.Join(dir, "max_energy_range_uj")); err != nil {
			return nil, err
		}
		if z.last, err = readMicrojoules(z.path); err != nil {
			return nil, err
		}
		r.zones = append(r.zones, z)
	}
	if len(r.zones) == 0 {
		return nil, errors.New("no RAPL package zone under " + filepath.Join(root, "class", "powercap"))
	}
	return r, nil
}

// sample adds the energy used since the last reading. A counter that went
// down wrapped past max_energy_range_uj once; sampling every second keeps
// a second wrap out of reach (it takes minutes at full power).
func (r *rapl) sample() error {
	for i := range r.zones {
		z := &r.zones[i]
		now, err := readMicrojoules(z.path)
		if err != nil {
			return err
		}
		delta := now - z.last
		if now < z.last {
			delta = z.maxRange - z.last + now
		}
		r.joules += float64(delta) / 1e6
		z.last = now
	}
	return nil
}

func readMicrojoules(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: want microjoules, got %q", path, strings.TrimSpace(string(b)))
	}
	return v, nil
}
