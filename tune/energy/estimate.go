package energy

import (
	"fmt"
	"math"
	"runtime"
)

// The estimate is codecarbon's (v3.3.0, codecarbon/external/hardware.py
// and ram.py) in its "process" tracking mode, used when RAPL cannot be read:
//
//   - CPU: the package's power at full load (codecarbon takes the TDP of the
//     CPU model from its table, POWER_CONSTANT = 85 W when the model is not
//     in it; ragtune always starts from 85 W, --cpu-power overrides) times
//     the process's share of the machine's CPUs, i.e. energy = power × CPU
//     seconds (user + system) / logical CPUs;
//   - RAM: power from the process's resident memory through codecarbon's
//     guess of the number of DIMMs (x86: 5 W per DIMM, RAM_SLOT_POWER_X86,
//     at least 2 DIMMs' worth; ARM: 1.5 W, at least 3 W), each DIMM past the
//     4th, 8th and 16th counting 0.9, 0.8 and 0.7 of one.
const (
	DefaultCPUPower = 85.0 // W, codecarbon's POWER_CONSTANT
	dimmPowerX86    = 5.0  // W, codecarbon's RAM_SLOT_POWER_X86
	dimmPowerARM    = 1.5  // W
	minRAMPowerARM  = 3.0  // W
)

// dimmCount is codecarbon's guess of the DIMMs that hold gb gigabytes.
func dimmCount(gb float64) int {
	switch {
	case gb <= 2:
		return 1
	case gb <= 16:
		return 2
	case gb <= 64:
		return 4
	case gb <= 128:
		return 8
	}
	// Large servers: the largest common DIMM size that gives at least 8
	// DIMMs, at most 32 of them.
	for _, size := range []float64{128, 64, 32, 16, 8, 4} {
		if size <= gb/8 {
			return min(int(math.Ceil(gb/size)), 32)
		}
	}
	return 8
}

// RAMPower is codecarbon's RAM power, in watts, for gb gigabytes in use.
func RAMPower(gb float64, arm bool) float64 {
	per, floor := dimmPowerX86, 2*dimmPowerX86
	if arm {
		per, floor = dimmPowerARM, minRAMPowerARM
	}
	n := float64(dimmCount(gb))
	p := per * min(n, 4)
	if n > 4 {
		p += 0.9 * per * (min(n, 8) - 4)
	}
	if n > 8 {
		p += 0.8 * per * (min(n, 16) - 8)
	}
	if n > 16 {
		p += 0.7 * per * (n - 16)
	}
	return max(p, floor)
}

func isARM() bool { return runtime.GOARCH == "arm64" || runtime.GOARCH == "arm" }

// Process is codecarbon's estimate for one process (and the children it
// waited for) from what the kernel accounted for it: the CPU seconds it
// used, its peak resident memory and how long it ran. External study
// objectives get this; a Meter uses it for the CPU and RAM when it cannot
// read RAPL.
func Process(cpuSeconds, wallSeconds float64, peakRSSBytes int64, cpuPower float64, cpus int, intensity float64) Report {
	if cpuPower <= 0 {
		cpuPower = DefaultCPUPower
	}
	if intensity <= 0 {
		intensity = DefaultCarbonIntensity
	}
	cpus = max(cpus, 1)
	ramW := RAMPower(float64(peakRSSBytes)/1e9, isARM())
	r := Report{
		DurationSeconds: wallSeconds,
		CPUSeconds:      cpuSeconds,
		PeakRSSBytes:    peakRSSBytes,
		CPUEnergyKWh:    joulesToKWh(cpuPower * cpuSeconds / float64(cpus)),
		RAMEnergyKWh:    joulesToKWh(ramW * wallSeconds),
		RAMPowerW:       ramW,
		CPUs:            cpus,
		CarbonIntensity: intensity,
		TrackingMode:    "process",
		Method:          fmt.Sprintf("cpu estimate (%g W x CPU share), ram estimate %g W", cpuPower, ramW),
	}
	if wallSeconds > 0 {
		r.CPUPowerW = r.CPUEnergyKWh * 3.6e6 / wallSeconds
		r.CPUUtilization = 100 * cpuSeconds / wallSeconds / float64(cpus)
	}
	r.total()
	return r
}

func joulesToKWh(j float64) float64 { return j / 3.6e6 }
