package energy

import (
	"encoding/csv"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/ragtune/ragtune/bindings/nvml"
	"github.com/ragtune/ragtune/bindings/safefile"
)

// GPULogColumns are gpu_power_log.csv's columns, one row per GPU and sample.
var GPULogColumns = []string{"timestamp", "gpu_index", "gpu_name", "power_w", "energy_j",
	"memory_used_mib", "memory_total_mib", "gpu_utilization_percent", "memory_utilization_percent"}

// logFlushEvery bounds what a crash loses of gpu_power_log.csv: the file
// is rewritten whole (atomically) this often and at the end.
const logFlushEvery = time.Minute

// gpuSampler follows every GPU NVML sees. Energy comes from the board's
// energy counter where the device has one, otherwise from power readings
// times the time between them.
type gpuSampler struct {
	lib     *nvml.Library
	devs    []nvml.Device
	counter bool      // every device has the energy counter
	first   []float64 // counter at start, J
	lastJ   []float64 // latest counter, J
	powerJ  float64   // Σ power × interval, all devices
	utilSum float64
	utilN   int
	last    time.Time

	logPath string
	rows    [][]string
	flushed time.Time
}

// openGPUs loads NVML; nil when there is no library or no GPU.
func openGPUs(libs []string, logPath string, now time.Time) *gpuSampler {
	lib, err := nvml.Open(libs...)
	if err != nil {
		return nil
	}
	devs, err := lib.Devices()
	if err != nil || len(devs) == 0 {
		lib.Close()
		return nil
	}
	g := &gpuSampler{lib: lib, devs: devs, counter: true, last: now, logPath: logPath, flushed: now}
	for _, d := range devs {
		j, err := d.EnergyJoules()
		if err != nil {
			g.counter = false
			break
		}
		g.first = append(g.first, j)
	}
	g.lastJ = append([]float64(nil), g.first...)
	return g
}

func (g *gpuSampler) sample(now time.Time) error {
	dt := now.Sub(g.last).Seconds()
	g.last = now
	stamp := now.UTC().Format("2006-01-02T15:04:05.000Z")
	for i, d := range g.devs {
		w, err := d.PowerWatts()
		if err != nil {
			w = 0
		}
		g.powerJ += w * dt
		energy := g.powerJ
		if g.counter {
			if j, err := d.EnergyJoules(); err == nil {
				g.lastJ[i] = j
			}
			energy = g.lastJ[i] - g.first[i]
		}
		used, total, _ := d.Memory()
		gpuU, memU, err := d.Utilization()
		if err == nil {
			g.utilSum += float64(gpuU)
			g.utilN++
		}
		g.rows = append(g.rows, []string{stamp, strconv.Itoa(d.Index), d.Name, fmtF(w), fmtF(energy),
			fmtF(float64(used) / (1 << 20)), fmtF(float64(total) / (1 << 20)), strconv.Itoa(gpuU), strconv.Itoa(memU)})
	}
	if now.Sub(g.flushed) >= logFlushEvery {
		g.flushed = now
		return g.writeLog()
	}
	return nil
}

func (g *gpuSampler) writeLog() error {
	if g.logPath == "" {
		return nil
	}
	return safefile.Write(g.logPath, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(GPULogColumns)
		cw.WriteAll(g.rows)
		return cw.Error()
	})
}

func (g *gpuSampler) close() error {
	return errors.Join(g.writeLog(), g.lib.Close())
}

// joules is the energy of every GPU since the start.
func (g *gpuSampler) joules() float64 {
	if !g.counter {
		return g.powerJ
	}
	var j float64
	for i := range g.first {
		j += g.lastJ[i] - g.first[i]
	}
	return j
}

func (g *gpuSampler) method() string {
	if g.counter {
		return "nvml"
	}
	return "nvml (power x time)"
}

func (g *gpuSampler) utilization() float64 {
	if g.utilN == 0 {
		return 0
	}
	return g.utilSum / float64(g.utilN)
}

func (g *gpuSampler) names() []string {
	out := make([]string, len(g.devs))
	for i, d := range g.devs {
		out[i] = d.Name
	}
	return out
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
