// Package nvml reads NVIDIA GPUs' power, energy, memory and utilisation
// through NVML (libnvidia-ml.so), loaded at run time with purego: the binary
// builds without CUDA and starts on machines without the library, where
// Open returns an error and callers fall back to something else.
//
// Only the handful of NVML calls that energy accounting needs are bound;
// each returns an nvmlReturn_t that becomes a Go error with NVML's text.
package nvml

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ebitengine/purego"
)

// DefaultLibraries are the names tried by Open: the driver installs the
// versioned name; the bare one exists only with development packages.
var DefaultLibraries = []string{"libnvidia-ml.so.1", "libnvidia-ml.so"}

// NVML return codes used here (nvml.h).
const (
	success      = 0
	notSupported = 3
)

// ErrNotSupported is what a device answers for a reading it cannot make
// (e.g. the total energy counter before Volta).
var ErrNotSupported = errors.New("nvml: not supported by this device")

// nameBufferSize is NVML_DEVICE_NAME_V2_BUFFER_SIZE.
const nameBufferSize = 96

// memory is nvmlMemory_t: bytes.
type memory struct {
	Total, Free, Used uint64
}

// utilization is nvmlUtilization_t: percent of the last sample period.
type utilization struct {
	GPU, Memory uint32
}

// Library is a loaded and initialised NVML.
type Library struct {
	handle uintptr // 0 once closed; Close must not race the calls below

	shutdown       func() int32
	errorString    func(int32) string
	deviceCount    func(*uint32) int32
	handleByIndex  func(uint32, *uintptr) int32
	deviceName     func(uintptr, *byte, uint32) int32
	powerUsage     func(uintptr, *uint32) int32
	totalEnergy    func(uintptr, *uint64) int32
	memoryInfo     func(uintptr, *memory) int32
	utilizationFor func(uintptr, *utilization) int32
}

// Open loads the first library of names (DefaultLibraries when none are
// given) and initialises NVML. A missing library, a library without NVML's
// symbols or a failed nvmlInit is an error, never a crash.
func Open(names ...string) (*Library, error) {
	if len(names) == 0 {
		names = DefaultLibraries
	}
	var handle uintptr
	var errs []string
	for _, name := range names {
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err == nil {
			handle = h
			break
		}
		errs = append(errs, err.Error())
	}
	if handle == 0 {
		return nil, fmt.Errorf("nvml: no library loaded (%s)", strings.Join(errs, "; "))
	}
	l := &Library{handle: handle}
	var init func() int32
	for _, f := range []struct {
		ptr  any
		name string
	}{
		{&init, "nvmlInit_v2"},
		{&l.shutdown, "nvmlShutdown"},
		{&l.errorString, "nvmlErrorString"},
		{&l.deviceCount, "nvmlDeviceGetCount_v2"},
		{&l.handleByIndex, "nvmlDeviceGetHandleByIndex_v2"},
		{&l.deviceName, "nvmlDeviceGetName"},
		{&l.powerUsage, "nvmlDeviceGetPowerUsage"},
		{&l.totalEnergy, "nvmlDeviceGetTotalEnergyConsumption"},
		{&l.memoryInfo, "nvmlDeviceGetMemoryInfo"},
		{&l.utilizationFor, "nvmlDeviceGetUtilizationRates"},
	} {
		// Dlsym first: RegisterLibFunc panics on a missing symbol.
		sym, err := purego.Dlsym(handle, f.name)
		if err != nil {
			purego.Dlclose(handle)
			return nil, fmt.Errorf("nvml: the library lacks %s: %v", f.name, err)
		}
		purego.RegisterFunc(f.ptr, sym)
	}
	if rc := init(); rc != success {
		err := l.err("nvmlInit_v2", rc)
		purego.Dlclose(handle)
		return nil, err
	}
	return l, nil
}

func (l *Library) err(call string, rc int32) error {
	if rc == success {
		return nil
	}
	if rc == notSupported {
		return fmt.Errorf("%s: %w", call, ErrNotSupported)
	}
	return fmt.Errorf("nvml: %s: %s (code %d)", call, l.errorString(rc), rc)
}

// Close shuts NVML down and unloads the library.
func (l *Library) Close() error {
	if l.handle == 0 {
		return nil
	}
	err := l.err("nvmlShutdown", l.shutdown())
	purego.Dlclose(l.handle)
	l.handle = 0
	return err
}

// Device is one GPU.
type Device struct {
	Index  int
	Name   string
	handle uintptr
	lib    *Library
}

// Devices lists the GPUs NVML sees, in its index order.
func (l *Library) Devices() ([]Device, error) {
	var n uint32
	if err := l.err("nvmlDeviceGetCount_v2", l.deviceCount(&n)); err != nil {
		return nil, err
	}
	out := make([]Device, 0, n)
	for i := range n {
		d := Device{Index: int(i), lib: l}
		if err := l.err("nvmlDeviceGetHandleByIndex_v2", l.handleByIndex(i, &d.handle)); err != nil {
			return nil, err
		}
		buf := make([]byte, nameBufferSize)
		if err := l.err("nvmlDeviceGetName", l.deviceName(d.handle, &buf[0], nameBufferSize)); err != nil {
			return nil, err
		}
		d.Name, _, _ = strings.Cut(string(buf), "\x00")
		out = append(out, d)
	}
	return out, nil
}

// PowerWatts is the board's power draw now.
func (d Device) PowerWatts() (float64, error) {
	var mw uint32
	if err := d.lib.err("nvmlDeviceGetPowerUsage", d.lib.powerUsage(d.handle, &mw)); err != nil {
		return 0, err
	}
	return float64(mw) / 1000, nil
}

// EnergyJoules is the board's energy counter since the driver loaded
// (Volta and later; ErrNotSupported before).
func (d Device) EnergyJoules() (float64, error) {
	var mj uint64
	if err := d.lib.err("nvmlDeviceGetTotalEnergyConsumption", d.lib.totalEnergy(d.handle, &mj)); err != nil {
		return 0, err
	}
	return float64(mj) / 1000, nil
}

// Memory is the device memory in use and in total, in bytes.
func (d Device) Memory() (used, total uint64, err error) {
	var m memory
	if err := d.lib.err("nvmlDeviceGetMemoryInfo", d.lib.memoryInfo(d.handle, &m)); err != nil {
		return 0, 0, err
	}
	return m.Used, m.Total, nil
}

// Utilization is the percent of the last sample period during which a
// kernel ran (gpu) and device memory was read or written (memory).
func (d Device) Utilization() (gpu, mem int, err error) {
	var u utilization
	if err := d.lib.err("nvmlDeviceGetUtilizationRates", d.lib.utilizationFor(d.handle, &u)); err != nil {
		return 0, 0, err
	}
	return int(u.GPU), int(u.Memory), nil
}
