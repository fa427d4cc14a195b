package devicetest_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/devicetest"
)

// smallGraph computes softmax(W·x) + c with W of the given type: a matmul
// (quantized or not), a softmax and an add, the ops of an encoder layer.
// Weights and inputs live in the backend's own buffers.
func smallGraph(t *testing.T, be *bindings.Backend, typ bindings.Type, w, x, c []float32, k, m, n int) []float32 {
	t.Helper()
	ctx, err := bindings.NewContext(16, 32, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	tw, tx, tc := ctx.NewTensor(typ, k, m), ctx.NewTensor(bindings.TypeF32, k, n), ctx.NewTensor(bindings.TypeF32, m, n)
	buf, err := be.AllocTensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	wb, err := bindings.Quantize(typ, w, m, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.SetBytes(wb); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetF32(x); err != nil {
		t.Fatal(err)
	}
	if err := tc.SetF32(c); err != nil {
		t.Fatal(err)
	}
	y := ctx.Add(ctx.SoftMaxExt(ctx.MulMat(tw, tx), bindings.Tensor{}, 0.125), tc)
	return compute(t, be, ctx, y, func() error { return nil })
}

// compute builds y's graph in ctx, runs it on be through an allocator and
// returns y (read before the allocator frees it); set uploads the inputs
// once the allocator has placed them.
func compute(t *testing.T, be *bindings.Backend, ctx *bindings.Context, y bindings.Tensor, set func() error) []float32 {
	t.Helper()
	g, err := ctx.NewGraph(32, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Expand(y); err != nil {
		t.Fatal(err)
	}
	alloc := be.NewAllocator()
	defer alloc.Close()
	if err := alloc.Alloc(g); err != nil {
		t.Fatal(err)
	}
	if err := set(); err != nil {
		t.Fatal(err)
	}
	if err := be.Compute(g); err != nil {
		t.Fatal(err)
	}
	return y.F32()
}

// TestDeviceMatchesCPU runs the same small graph on the test device and on
// the CPU. Relative differences measured on lavapipe: f32 2e-5 (its
// matmul sums in another order and precision), f16 4e-4, q8_0 7e-4, q4_0
// 5e-4 (both backends quantize the activations, differently).
func TestDeviceMatchesCPU(t *testing.T) {
	dev := devicetest.Device(t)
	gpu, err := dev.NewBackend(2)
	if err != nil {
		t.Fatal(err)
	}
	defer gpu.Close()
	cpu, err := bindings.NewCPUBackend(2)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	const k, m, n = 256, 64, 16
	r := rand.New(rand.NewPCG(3, 4))
	w, x, c := rnd(r, k*m), rnd(r, k*n), rnd(r, m*n)
	for typ, tol := range map[bindings.Type]float64{bindings.TypeF32: 1e-4, bindings.TypeF16: 2e-3, bindings.TypeQ8_0: 1e-2, bindings.TypeQ4_0: 1e-2} {
		want := smallGraph(t, cpu, typ, w, x, c, k, m, n)
		got := smallGraph(t, gpu, typ, w, x, c, k, m, n)
		var d, s float64
		for i := range want {
			d += math.Pow(float64(got[i]-want[i]), 2)
			s += math.Pow(float64(want[i]), 2)
		}
		rel := math.Sqrt(d / s)
		t.Logf("%s on %s (%s): relative difference from the CPU %.2g", typ, dev.Name(), dev.Description(), rel)
		if !(rel <= tol) {
			t.Errorf("%s: relative difference %.3g from the CPU, want <= %g", typ, rel, tol)
		}
	}
}

func rnd(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

// TestMissingCUDALibrary checks the message a user without the library gets.
func TestMissingCUDALibrary(t *testing.T) {
	for _, lib := range bindings.LoadBackends() {
		if lib.Kind == "cuda" && lib.Path != "" {
			t.Skipf("a CUDA library is present: %s", lib.Path)
		}
	}
	_, err := bindings.SelectDevice("cuda")
	if err == nil {
		t.Fatal("cuda selected without a CUDA library")
	}
	for _, want := range []string{"no CUDA backend library found", "libggml-cuda.so", "make cuda", "RAGTUNE_BACKEND_DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestSourceIDCheck opens the Vulkan library built by scripts/build-backend
// (it carries the source id): accepted for this binary's sources, refused
// for others; a ggml library without the id is refused as well.
func TestSourceIDCheck(t *testing.T) {
	path := ""
	for _, lib := range bindings.LoadBackends() {
		if lib.Kind == "vulkan" && lib.Loaded {
			path = lib.Path
		}
	}
	if path == "" {
		if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
			t.Fatalf("no Vulkan library loaded: %+v (build it with make vulkan)", bindings.LoadBackends())
		}
		t.Skipf("no Vulkan library loaded: %+v", bindings.LoadBackends())
	}
	if err := bindings.CheckLibrary(path, bindings.SourceID()); err != nil {
		t.Fatalf("own library refused: %v", err)
	}
	other := "github.com/ollama/ollama@v0.17.3 h1:other"
	if err := bindings.CheckLibrary(path, other); err == nil || !strings.Contains(err.Error(), "built from other ggml sources") {
		t.Fatalf("library accepted by a binary of other sources: %v", err)
	}
	if err := bindings.CheckLibrary(filepath.Join(filepath.Dir(path), "libggml-base.so.0"), bindings.SourceID()); err == nil || !strings.Contains(err.Error(), "not built by ragtune") {
		t.Fatalf("a library without the id: %v", err)
	}
	if err := bindings.CheckLibrary(filepath.Join(t.TempDir(), "libggml-vulkan.so"), bindings.SourceID()); err == nil || !strings.Contains(err.Error(), "cannot be opened") {
		t.Fatalf("a missing file: %v", err)
	}
}

// TestAutoPicksAGPU: auto is the first GPU when a library loaded a device.
func TestAutoPicksAGPU(t *testing.T) {
	auto, err := bindings.SelectDevice("auto")
	if err != nil {
		t.Fatal(err)
	}
	if gpus := len(bindings.Devices()) > 1; gpus == auto.IsCPU() {
		t.Fatalf("auto picked %s with devices %v", auto.Name(), bindings.Devices())
	}
	if _, err := bindings.SelectDevice("vulkan:99"); err == nil || !strings.Contains(err.Error(), "vulkan") {
		t.Fatalf("vulkan:99: %v", err)
	}
}

// The device's backend names its kind as --device does; a Vulkan device
// names its driver, read from Vulkan itself (lavapipe's version is the
// installed Mesa package's); one-graph training runs everywhere, and
// segmented training is refused only on lavapipe before Mesa 25
// (Backend.TrainingSupported), which is what the trainer checks after
// opening its backend.
func TestBackendKindAndTrainingSupport(t *testing.T) {
	d := devicetest.Device(t)
	be, err := d.NewBackend(1)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if be.Kind() != d.Kind() {
		t.Fatalf("backend kind %q, device kind %q", be.Kind(), d.Kind())
	}
	if err := be.TrainingSupported(false); err != nil {
		t.Fatalf("%s: one-graph training refused: %v", be.Kind(), err)
	}
	drv := d.Driver()
	t.Logf("%s (%s): driver %+v", d.Name(), d.Description(), drv)
	refused := be.TrainingSupported(true) != nil
	if d.Kind() == "vulkan" {
		if drv.ID == 0 || drv.Name == "" || drv.Info == "" {
			t.Fatalf("Vulkan device %s: driver unknown (%+v)", d.Name(), drv)
		}
		if drv.Name == "llvmpipe" {
			mesa := installedMesa(t)
			if !strings.HasPrefix(drv.Info, "Mesa "+mesa) {
				t.Fatalf("lavapipe reports %q, the installed mesa-vulkan-drivers is %s", drv.Info, mesa)
			}
			major, _ := strconv.Atoi(strings.Split(mesa, ".")[0])
			if old := major < 25; refused != old {
				t.Fatalf("Mesa %s's lavapipe: segmented training refused %v", mesa, refused)
			}
		}
	}
	if d.Kind() == "cuda" && refused {
		t.Fatalf("CUDA: segmented training refused")
	}
	cpu, err := bindings.NewCPUBackend(1)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	if cpu.Kind() != "cpu" || cpu.TrainingSupported(true) != nil || (bindings.Devices()[0].Driver() != bindings.Driver{}) {
		t.Fatalf("CPU backend: kind %q", cpu.Kind())
	}
}

// installedMesa is the upstream version of Debian's mesa-vulkan-drivers
// ("25.0.7"); the test skips where dpkg cannot say.
func installedMesa(t *testing.T) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "mesa-vulkan-drivers").Output()
	if err != nil {
		t.Skipf("lavapipe's Mesa version: dpkg-query: %v", err)
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), "-")
	if _, after, ok := strings.Cut(v, ":"); ok { // epoch
		v = after
	}
	return v
}

// TestInputsRunOnDevice: a graph whose inputs meet no weight before a
// product (a recomputed segment's: hidden states and gradients in) runs
// on the device, inputs included, not on the CPU behind it.
func TestInputsRunOnDevice(t *testing.T) {
	dev := devicetest.Device(t)
	be, err := dev.NewBackend(1)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	const k, m, n = 32, 8, 4
	r := rand.New(rand.NewPCG(3, 4))
	a, b := rnd(r, k*m), rnd(r, k*n)
	ctx, err := bindings.NewContext(16, 32, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	ta := ctx.NewTensor(bindings.TypeF32, k, m).SetInput()
	tb := ctx.NewTensor(bindings.TypeF32, k, n).SetInput()
	y := ctx.Cont(ctx.Permute(ctx.Scale(ctx.MulMat(ta, tb), 0.5), [4]int{1, 0, 2, 3}))
	got := compute(t, be, ctx, y, func() error { return errors.Join(ta.SetF32(a), tb.SetF32(b)) })
	if fb := be.Fallbacks(); len(fb) != 0 {
		t.Errorf("ops on the CPU: %v", fb)
	}
	// y is [m, n] permuted to [n, m]: got[j*n+i] = 0.5·a_j·b_i.
	for i := range n {
		for j := range m {
			want := 0.0
			for l := range k {
				want += float64(a[j*k+l]) * float64(b[i*k+l])
			}
			if d := math.Abs(float64(got[j*n+i]) - want/2); d > 1e-4*max(1, math.Abs(want)) {
				t.Fatalf("y[%d,%d] = %g, want %g", i, j, got[j*n+i], want/2)
			}
		}
	}
}

// TestFrozenWeightGradientsOnDevice differentiates Σ c ⊙ (W·x) through a
// frozen W of each type on the device. x's gradient Wᵀc is a backward
// product that reads a transposed copy of W in be.WeightGradType() (bf16
// where the device multiplies bf16), converted before it is transposed, and
// it must run on the device, copies included, and match float64 over W's
// stored values. Tolerance
// (relative L2): 1e-2 with a bf16 copy, whose 8 significant bits round
// each weight and gradient element by up to 2^-9 (measured on lavapipe:
// f16 1.8e-3, q8_0 1.6e-3, bf16 8e-8: a bf16 weight's copy is exact, and
// lavapipe multiplies the f32 gradient as it is); 1e-4 with an f32 copy.
func TestFrozenWeightGradientsOnDevice(t *testing.T) {
	dev := devicetest.Device(t)
	be, err := dev.NewBackend(1)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	t.Logf("%s: frozen weights' backward copies in %s", dev.Name(), be.WeightGradType())
	const k, m, n = 64, 48, 8
	r := rand.New(rand.NewPCG(5, 6))
	for _, typ := range []bindings.Type{bindings.TypeF16, bindings.TypeBF16, bindings.TypeQ8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			w, x, c := rnd(r, k*m), rnd(r, k*n), rnd(r, m*n)
			wb, err := bindings.Quantize(typ, w, m, k)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := bindings.Dequantize(typ, wb, m, k)
			if err != nil {
				t.Fatal(err)
			}
			ctx, err := bindings.NewContext(64, 128, true)
			if err != nil {
				t.Fatal(err)
			}
			defer ctx.Close()
			tw := ctx.NewTensor(typ, k, m)
			tx := ctx.NewTensor(bindings.TypeF32, k, n).SetParam()
			tc := ctx.NewTensor(bindings.TypeF32, m, n)
			seed := ctx.NewTensor(bindings.TypeF32, 1)
			buf, err := be.AllocTensors(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer buf.Close()
			loss := ctx.Sum(ctx.Mul(ctx.MulMat(tw, tx), tc)).SetLoss()
			g, err := ctx.NewGraph(128, true)
			if err == nil {
				err = g.Expand(loss)
			}
			if err == nil {
				err = g.BuildBackward(loss, seed, be)
			}
			if err != nil {
				t.Fatal(err)
			}
			gx := g.Grad(tx).SetOutput()
			products := 0
			for i := range g.NumNodes() {
				if node := g.Node(i); node.Op() == "MUL_MAT" && !g.InForward(node) {
					products++
					if got := node.Src(0).Type(); got != be.WeightGradType() {
						t.Errorf("x's gradient product reads W's copy as %s, want %s", got, be.WeightGradType())
					}
					// Converted before transposing: CUDA transposes by
					// tiles only within one type.
					if c := node.Src(0); c.Op() != "CONT" || c.Src(0).Type() != c.Type() {
						t.Errorf("W's copy is %s of a %s tensor, want a transposing copy within %s", c.Op(), c.Src(0).Type(), c.Type())
					}
				}
			}
			if products != 1 {
				t.Fatalf("%d backward products, want 1 (x's gradient)", products)
			}
			alloc := be.NewAllocator()
			defer alloc.Close()
			if err := alloc.Alloc(g); err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(tw.SetBytes(wb), tx.SetF32(x), tc.SetF32(c), seed.SetF32([]float32{1})); err != nil {
				t.Fatal(err)
			}
			if err := be.Compute(g); err != nil {
				t.Fatal(err)
			}
			if fb := be.Fallbacks(); len(fb) != 0 {
				t.Errorf("ops on the CPU: %v", fb)
			}
			got := gx.F32()
			var num, den float64
			for col := range n {
				for i := range k {
					want := 0.0
					for j := range m {
						want += float64(stored[j*k+i]) * float64(c[col*m+j])
					}
					d := float64(got[col*k+i]) - want
					num, den = num+d*d, den+want*want
				}
			}
			rel := math.Sqrt(num / den)
			tol := 1e-4
			if be.WeightGradType() == bindings.TypeBF16 {
				tol = 1e-2
			}
			t.Logf("relative L2 difference of x's gradient from float64: %.2e", rel)
			if !(rel <= tol) {
				t.Errorf("x's gradient: relative L2 difference %.3g, want <= %g", rel, tol)
			}
		})
	}
}
