// Package energy measures what a run costs in energy and emissions, the way
// codecarbon does for the original work's Python scripts: CPU package energy
// from RAPL (Linux powercap) when it can be read, GPU energy from NVML when
// a driver is there, otherwise codecarbon's estimate; RAM is always
// codecarbon's estimate. A Meter runs beside a training run, samples every
// second (writing gpu_power_log.csv when there are GPUs) and ends with a
// Report that becomes a row of emissions.csv, with codecarbon's columns.
package energy

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultCarbonIntensity is codecarbon's world average, 475 g CO2eq/kWh
// (codecarbon/data/private_infra/carbon_intensity_per_source.json, from the
// IEA's Global Energy & CO2 Status Report 2019). ragtune does not look up
// the grid of where it runs: pass the local figure with --carbon-intensity.
const DefaultCarbonIntensity = 475.0

// Options configure a Meter. The zero value measures this machine with
// the defaults.
type Options struct {
	CarbonIntensity float64       // g CO2eq per kWh; 0: DefaultCarbonIntensity
	CPUPower        float64       // W at full load, for the CPU estimate; 0: DefaultCPUPower
	SysfsRoot       string        // where powercap lives; "": /sys
	NVMLLibraries   []string      // nil: nvml.DefaultLibraries
	NoGPU           bool          // do not load NVML at all
	GPULog          string        // gpu_power_log.csv path; "": no log
	Interval        time.Duration // sampling period; 0: a second
}

// Report is a finished measurement.
type Report struct {
	Start           time.Time `json:"start"`
	DurationSeconds float64   `json:"duration_seconds"`
	EnergyKWh       float64   `json:"energy_kwh"`
	EmissionsKg     float64   `json:"emissions_kg"`
	CarbonIntensity float64   `json:"carbon_intensity_g_per_kwh"`
	// Method names how each part was measured, e.g. "cpu rapl, gpu nvml,
	// ram estimate 10 W" or "cpu estimate (85 W x CPU share), ram estimate 10 W".
	Method       string  `json:"method"`
	CPUEnergyKWh float64 `json:"cpu_energy_kwh"`
	GPUEnergyKWh float64 `json:"gpu_energy_kwh"`
	RAMEnergyKWh float64 `json:"ram_energy_kwh"`
	CPUPowerW    float64 `json:"cpu_power_w"` // averages over the run
	GPUPowerW    float64 `json:"gpu_power_w"`
	RAMPowerW    float64 `json:"ram_power_w"`
	CPUSeconds   float64 `json:"cpu_seconds"` // the process's user + system time
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	// CPUUtilization is the process's share of the machine's CPUs, percent.
	CPUUtilization float64  `json:"cpu_utilization_percent"`
	GPUUtilization float64  `json:"gpu_utilization_percent,omitempty"`
	GPUs           []string `json:"gpus,omitempty"`
	CPUs           int      `json:"cpus"`
	// TrackingMode is codecarbon's: "machine" when RAPL measured the whole
	// CPU package, "process" when the estimate covers this process only.
	TrackingMode string `json:"tracking_mode"`
}

// total sums the parts and prices them in CO2.
func (r *Report) total() {
	r.EnergyKWh = r.CPUEnergyKWh + r.GPUEnergyKWh + r.RAMEnergyKWh
	r.EmissionsKg = r.EnergyKWh * r.CarbonIntensity / 1000
}

// Meter measures from Start to Stop.
type Meter struct {
	opts  Options
	start time.Time
	cpu0  float64 // process CPU seconds at Start
	rapl  *rapl
	gpus  *gpuSampler
	// RAM power is sampled from the resident set, codecarbon's way.
	ramJoules, ramPowerSum float64
	samples                int
	last                   time.Time

	mu   sync.Mutex // guards the samplers between the ticker and Stop
	stop chan struct{}
	done chan struct{}
	err  error // first error of a sampler (the log file), reported by Stop
}

// Start begins measuring. It never fails: what cannot be read is
// estimated, and the Report's Method says which.
func Start(opts Options) *Meter {
	if opts.CarbonIntensity <= 0 {
		opts.CarbonIntensity = DefaultCarbonIntensity
	}
	if opts.CPUPower <= 0 {
		opts.CPUPower = DefaultCPUPower
	}
	if opts.SysfsRoot == "" {
		opts.SysfsRoot = "/sys"
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	m := &Meter{opts: opts, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	m.last = m.start
	m.cpu0 = processCPUSeconds()
	m.rapl, _ = openRAPL(opts.SysfsRoot) // unreadable: estimate instead
	if !opts.NoGPU {
		m.gpus = openGPUs(opts.NVMLLibraries, opts.GPULog, m.start)
	}
	go m.loop()
	return m
}

func (m *Meter) loop() {
	defer close(m.done)
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.sample(now)
		}
	}
}

// sample reads every source once.
func (m *Meter) sample(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rapl != nil {
		if err := m.rapl.sample(); err != nil {
			// A counter that stops being readable mid-run: estimate the
			// whole run instead of mixing methods.
			m.rapl = nil
		}
	}
	if m.gpus != nil {
		if err := m.gpus.sample(now); err != nil && m.err == nil {
			m.err = err
		}
	}
	ramW := RAMPower(float64(currentRSS())/1e9, isARM())
	m.ramJoules += ramW * now.Sub(m.last).Seconds()
	m.ramPowerSum += ramW
	m.samples++
	m.last = now
}

// Stop ends the measurement and returns its Report. The error is about
// gpu_power_log.csv only; the Report is complete either way.
func (m *Meter) Stop() (Report, error) {
	close(m.stop)
	<-m.done
	now := time.Now()
	m.sample(now)
	wall := now.Sub(m.start).Seconds()
	cpuSec := processCPUSeconds() - m.cpu0
	r := Process(cpuSec, wall, peakRSS(), m.opts.CPUPower, runtime.NumCPU(), m.opts.CarbonIntensity)
	r.Start = m.start
	r.RAMPowerW = m.ramPowerSum / float64(m.samples)
	r.RAMEnergyKWh = joulesToKWh(m.ramJoules)
	var method []string
	if m.rapl != nil {
		r.CPUEnergyKWh = joulesToKWh(m.rapl.joules)
		r.CPUPowerW = m.rapl.joules / wall
		r.TrackingMode = "machine"
		method = append(method, "cpu rapl")
	} else {
		method = append(method, fmt.Sprintf("cpu estimate (%g W x CPU share)", m.opts.CPUPower))
	}
	if g := m.gpus; g != nil {
		err := g.close()
		if m.err == nil {
			m.err = err
		}
		r.GPUEnergyKWh = joulesToKWh(g.joules())
		r.GPUPowerW = g.joules() / wall
		r.GPUUtilization = g.utilization()
		r.GPUs = g.names()
		method = append(method, "gpu "+g.method())
	}
	method = append(method, fmt.Sprintf("ram estimate %.3g W", r.RAMPowerW))
	r.Method = strings.Join(method, ", ")
	r.total()
	return r, m.err
}

// processCPUSeconds is this process's user + system time, all threads.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// peakRSS is the process's peak resident set (getrusage's ru_maxrss, KiB
// on Linux).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

// ChildUsage is what the kernel accounted for a waited-for child process
// (and the descendants it waited for): CPU seconds and peak resident set.
func ChildUsage(state *os.ProcessState) (cpuSeconds float64, peakRSSBytes int64, err error) {
	if state == nil {
		return 0, 0, errors.New("the process has not been waited for")
	}
	ru, ok := state.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, 0, errors.New("no resource usage for the process")
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime), ru.Maxrss * 1024, nil
}

// currentRSS is the process's resident set now, from /proc/self/statm.
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return 0
	}
	return resident * int64(os.Getpagesize())
}
