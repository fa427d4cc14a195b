package energy

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// codecarbon 3.3.0's EmissionsData fields, in declaration order, as read in
// codecarbon/output_methods/emissions_data.py (mlco2/codecarbon b05965e).
var codecarbon330Columns = strings.Fields(`timestamp project_name run_id experiment_id duration emissions
	emissions_rate cpu_power gpu_power ram_power cpu_energy gpu_energy ram_energy energy_consumed
	water_consumed country_name country_iso_code region cloud_provider cloud_region os python_version
	codecarbon_version cpu_count cpu_model gpu_count gpu_model longitude latitude ram_total_size
	tracking_mode cpu_utilization_percent gpu_utilization_percent ram_utilization_percent ram_used_gb
	on_cloud pue wue`)

// fakeZone writes a powercap zone: name, counter and its range.
func fakeZone(t *testing.T, root, zone, name string, uj, maxRange uint64) {
	t.Helper()
	dir := filepath.Join(root, "class", "powercap", zone)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"name": name, "energy_uj": strconv.FormatUint(uj, 10), "max_energy_range_uj": strconv.FormatUint(maxRange, 10)} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func setCounter(t *testing.T, root, zone string, uj uint64) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "class", "powercap", zone, "energy_uj"), []byte(strconv.FormatUint(uj, 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Two packages, one of which wraps; sub-zones and psys are not counted.
func fakeRAPL(t *testing.T) string {
	root := t.TempDir()
	fakeZone(t, root, "intel-rapl:0", "package-0", 262_000_000_000, 262_143_328_850)
	fakeZone(t, root, "intel-rapl:0:0", "core", 5_000_000, 262_143_328_850)
	fakeZone(t, root, "intel-rapl:1", "package-1", 1_000_000, 262_143_328_850)
	fakeZone(t, root, "intel-rapl:2", "psys", 7_000_000, 262_143_328_850)
	return root
}

func TestRAPLWrapAround(t *testing.T) {
	root := fakeRAPL(t)
	r, err := openRAPL(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.zones) != 2 {
		t.Fatalf("%d zones, want the two packages", len(r.zones))
	}
	// package-0 wraps: 143,328,850 µJ to the end of its range, then 500 J;
	// package-1 moves 20 J; core and psys move but do not count.
	setCounter(t, root, "intel-rapl:0", 500_000_000)
	setCounter(t, root, "intel-rapl:1", 21_000_000)
	setCounter(t, root, "intel-rapl:0:0", 900_000_000)
	setCounter(t, root, "intel-rapl:2", 900_000_000)
	if err := r.sample(); err != nil {
		t.Fatal(err)
	}
	want := 143.32885 + 500 + 20
	if math.Abs(r.joules-want) > 1e-6 {
		t.Fatalf("%.6f J, want %.6f", r.joules, want)
	}
	setCounter(t, root, "intel-rapl:1", 31_000_000)
	if err := r.sample(); err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.joules-want-10) > 1e-6 {
		t.Fatalf("%.6f J after a second sample, want %.6f", r.joules, want+10)
	}
}

func TestRAPLUnusable(t *testing.T) {
	if _, err := openRAPL(t.TempDir()); err == nil {
		t.Error("an empty powercap tree gave a RAPL reader")
	}
	root := t.TempDir()
	fakeZone(t, root, "intel-rapl:0", "package-0", 1, 10)
	setCounter(t, root, "intel-rapl:0", 0)
	os.WriteFile(filepath.Join(root, "class", "powercap", "intel-rapl:0", "energy_uj"), []byte("permission denied?\n"), 0o644)
	_, err := openRAPL(root)
	if err == nil || !strings.Contains(err.Error(), "energy_uj") {
		t.Errorf("a garbled counter: want an error naming the file, got %v", err)
	}
}

// spin burns sec CPU seconds in this process (however busy the machine).
func spin(sec float64) float64 {
	x := 1.0
	for start := processCPUSeconds(); processCPUSeconds()-start < sec; {
		for i := 0; i < 10000; i++ {
			x = math.Sqrt(x + float64(i))
		}
	}
	return x
}

func TestMeterReadsRAPL(t *testing.T) {
	root := fakeRAPL(t)
	m := Start(Options{SysfsRoot: root, NoGPU: true, CarbonIntensity: 100, Interval: 20 * time.Millisecond})
	time.Sleep(50 * time.Millisecond)
	setCounter(t, root, "intel-rapl:1", 1_000_000+3_600_000_000) // 3,600 J = 1 Wh
	r, err := m.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Method, "cpu rapl") || r.TrackingMode != "machine" {
		t.Errorf("method %q, tracking %q", r.Method, r.TrackingMode)
	}
	if math.Abs(r.CPUEnergyKWh-0.001) > 1e-12 {
		t.Errorf("cpu energy %g kWh, want 0.001", r.CPUEnergyKWh)
	}
	if r.RAMEnergyKWh <= 0 || math.Abs(r.EnergyKWh-r.CPUEnergyKWh-r.RAMEnergyKWh) > 1e-15 {
		t.Errorf("energy %g = cpu %g + ram %g?", r.EnergyKWh, r.CPUEnergyKWh, r.RAMEnergyKWh)
	}
	if math.Abs(r.EmissionsKg-r.EnergyKWh*0.1) > 1e-15 {
		t.Errorf("emissions %g kg for %g kWh at 100 g/kWh", r.EmissionsKg, r.EnergyKWh)
	}
}

// Without RAPL and without NVML (a library name that does not exist) the
// meter falls back on codecarbon's estimate and says so.
func TestMeterEstimatesWithoutRAPLOrNVML(t *testing.T) {
	m := Start(Options{SysfsRoot: t.TempDir(), NVMLLibraries: []string{"libnvidia-ml-absent.so.1"}, Interval: 20 * time.Millisecond})
	spin(0.2)
	r, err := m.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Method, "cpu estimate (85 W x CPU share)") || !strings.Contains(r.Method, "ram estimate") || len(r.GPUs) != 0 {
		t.Errorf("method %q, gpus %v", r.Method, r.GPUs)
	}
	if r.CPUSeconds < 0.2 || r.DurationSeconds < r.CPUSeconds/float64(runtime.NumCPU()) {
		t.Fatalf("cpu %.3fs over %.3fs: the spin was not measured", r.CPUSeconds, r.DurationSeconds)
	}
	want := 85 * r.CPUSeconds / float64(runtime.NumCPU()) / 3.6e6
	if math.Abs(r.CPUEnergyKWh-want) > 1e-12 {
		t.Errorf("cpu energy %g kWh, want %g", r.CPUEnergyKWh, want)
	}
	if r.RAMPowerW != 10 {
		t.Errorf("ram power %g W for a small process, want codecarbon's 10 W floor", r.RAMPowerW)
	}
	if math.Abs(r.EmissionsKg-r.EnergyKWh*0.475) > 1e-15 || r.CarbonIntensity != DefaultCarbonIntensity {
		t.Errorf("emissions %g kg for %g kWh", r.EmissionsKg, r.EnergyKWh)
	}
}

func TestProcessEstimate(t *testing.T) {
	// 10 CPU seconds on 2 CPUs at 85 W: 425 J; 1 GB resident (10 W floor)
	// for 20 s: 200 J.
	r := Process(10, 20, 1e9, 0, 2, 0)
	if math.Abs(r.EnergyKWh*3.6e6-625) > 1e-9 || math.Abs(r.EmissionsKg-r.EnergyKWh*0.475) > 1e-15 {
		t.Errorf("%g kWh, %g kg", r.EnergyKWh, r.EmissionsKg)
	}
	if r.CPUPowerW != 21.25 || r.CPUUtilization != 25 || r.TrackingMode != "process" {
		t.Errorf("cpu %g W, %g%%, %s", r.CPUPowerW, r.CPUUtilization, r.TrackingMode)
	}
}

// RAM power follows codecarbon's DIMM guess (x86): 2 DIMMs up to 16 GB,
// 4 up to 64, 8 up to 128, then DIMMs of the largest size giving 8 or more.
func TestRAMPower(t *testing.T) {
	for _, c := range []struct{ gb, want float64 }{
		{0.3, 10}, {16, 10}, {32, 20}, {100, 38}, {1024, 38}, {2048, 70}, {8192, 70 + 0.7*5*16},
	} {
		if got := RAMPower(c.gb, false); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%g GB: %g W, want %g", c.gb, got, c.want)
		}
	}
	if got := RAMPower(1, true); got != 3 {
		t.Errorf("ARM, 1 GB: %g W, want 3", got)
	}
}

func TestEmissionsCSV(t *testing.T) {
	if !slices.Equal(EmissionsColumns, codecarbon330Columns) {
		t.Fatalf("columns differ from codecarbon 3.3.0's:\n%v\n%v", EmissionsColumns, codecarbon330Columns)
	}
	path := filepath.Join(t.TempDir(), "emissions.csv")
	r := Process(10, 20, 1e9, 0, 2, 0)
	r.Start = time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	for range 2 {
		if err := AppendEmissions(path, r, "ragtune", "run"); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := os.Open(path)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], codecarbon330Columns) {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	get := func(col string) string { return rows[1][slices.Index(rows[0], col)] }
	if get("timestamp") != "2026-12-06T03:00:20" || get("duration") != "20" || get("tracking_mode") != "process" || get("project_name") != "ragtune" {
		t.Errorf("row %v", rows[1])
	}
	if e, _ := strconv.ParseFloat(get("energy_consumed"), 64); math.Abs(e-r.EnergyKWh) > 1e-15 {
		t.Errorf("energy_consumed %s, want %g", get("energy_consumed"), r.EnergyKWh)
	}
	if rows[1][slices.Index(rows[0], "run_id")] == rows[2][slices.Index(rows[0], "run_id")] {
		t.Error("two runs share a run_id")
	}

	// Someone else's CSV is left as it was.
	other := filepath.Join(t.TempDir(), "emissions.csv")
	os.WriteFile(other, []byte("a,b\n1,2\n"), 0o644)
	if err := AppendEmissions(other, r, "ragtune", "run"); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("a foreign file: %v", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "a,b\n1,2\n" {
		t.Errorf("the foreign file changed: %q", b)
	}
}
