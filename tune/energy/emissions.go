package energy

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ragtune/ragtune/bindings/safefile"
)

// EmissionsColumns are codecarbon's emissions.csv columns, in its order:
// the fields of codecarbon.output_methods.emissions_data.EmissionsData in
// codecarbon 3.3.0 (mlco2/codecarbon b05965e).
var EmissionsColumns = []string{
	"timestamp", "project_name", "run_id", "experiment_id", "duration",
	"emissions", "emissions_rate", "cpu_power", "gpu_power", "ram_power",
	"cpu_energy", "gpu_energy", "ram_energy", "energy_consumed", "water_consumed",
	"country_name", "country_iso_code", "region", "cloud_provider", "cloud_region",
	"os", "python_version", "codecarbon_version", "cpu_count", "cpu_model",
	"gpu_count", "gpu_model", "longitude", "latitude", "ram_total_size",
	"tracking_mode", "cpu_utilization_percent", "gpu_utilization_percent",
	"ram_utilization_percent", "ram_used_gb", "on_cloud", "pue", "wue",
}

// Row is r as a row of emissions.csv, in codecarbon's units: seconds, kg
// CO2eq (rate in kg/s), W, kWh, GB. Where codecarbon knows what ragtune
// does not (location, Python, codecarbon's version) the cell is empty.
func (r Report) Row(project, experiment string) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	rate := 0.0
	if r.DurationSeconds > 0 {
		rate = r.EmissionsKg / r.DurationSeconds
	}
	ramTotal := memTotalBytes()
	ramUtil := 0.0
	if ramTotal > 0 {
		ramUtil = 100 * float64(r.PeakRSSBytes) / float64(ramTotal)
	}
	cols := map[string]string{
		"timestamp":    r.Start.Add(time.Duration(r.DurationSeconds * float64(time.Second))).Format("2006-01-02T15:04:05"),
		"project_name": project, "run_id": newRunID(), "experiment_id": experiment,
		"duration": f(r.DurationSeconds), "emissions": f(r.EmissionsKg), "emissions_rate": f(rate),
		"cpu_power": f(r.CPUPowerW), "gpu_power": f(r.GPUPowerW), "ram_power": f(r.RAMPowerW),
		"cpu_energy": f(r.CPUEnergyKWh), "gpu_energy": f(r.GPUEnergyKWh), "ram_energy": f(r.RAMEnergyKWh),
		"energy_consumed": f(r.EnergyKWh), "water_consumed": "0",
		"os": osName(), "cpu_count": strconv.Itoa(r.CPUs), "cpu_model": cpuModel(),
		"gpu_count": strconv.Itoa(len(r.GPUs)), "gpu_model": gpuModel(r.GPUs),
		"ram_total_size": f(float64(ramTotal) / 1e9), "tracking_mode": r.TrackingMode,
		"cpu_utilization_percent": f(r.CPUUtilization), "gpu_utilization_percent": f(r.GPUUtilization),
		"ram_utilization_percent": f(ramUtil), "ram_used_gb": f(float64(r.PeakRSSBytes) / 1e9),
		"on_cloud": "N", "pue": "1", "wue": "0",
	}
	row := make([]string, len(EmissionsColumns))
	for i, c := range EmissionsColumns {
		row[i] = cols[c]
	}
	return row
}

// AppendEmissions adds r to the emissions.csv at path (created with the
// header when missing), rewriting the file atomically. A file whose header
// is not codecarbon's is left alone and reported.
func AppendEmissions(path string, r Report, project, experiment string) error {
	var rows [][]string
	old, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		rows = [][]string{EmissionsColumns}
	case err != nil:
		return err
	default:
		cr := csv.NewReader(bytes.NewReader(old))
		cr.FieldsPerRecord = len(EmissionsColumns)
		if rows, err = cr.ReadAll(); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		if len(rows) == 0 {
			rows = [][]string{EmissionsColumns}
		} else if !slices.Equal(rows[0], EmissionsColumns) {
			return fmt.Errorf("%s: line 1: not codecarbon's emissions.csv header; move the file away to start a new one", path)
		}
	}
	rows = append(rows, r.Row(project, experiment))
	return safefile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.WriteAll(rows)
		return cw.Error()
	})
}

// newRunID is a random UUID (version 4), as codecarbon's run_id.
func newRunID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func gpuModel(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("%d x %s", len(names), names[0])
}

// osName is like Python's platform.platform(): Linux-<release>-<machine>.
func osName() string {
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return fmt.Sprintf("%s-%s-%s", strings.ToUpper(runtime.GOOS[:1])+runtime.GOOS[1:], strings.TrimSpace(string(rel)), runtime.GOARCH)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func memTotalBytes() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
