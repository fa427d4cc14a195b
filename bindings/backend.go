package bindings

// #include <stdlib.h>
// #include "ggml.h"
// #include "ggml-backend.h"
// #include "ggml-cpu.h"
import "C"

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Backend runs graphs on one device: the CPU, or a GPU of a backend
// library loaded at run time. A GPU backend keeps ggml's CPU backend
// beside it for the operations the device lacks (see Allocator); on the
// CPU device both are the same backend.
//
// It also keeps the run's accounting: the bytes of its device buffers
// (weights, adapters, compute buffers) and their peak, and which
// operations fell back to the CPU.
type Backend struct {
	b   C.ggml_backend_t // the device's backend
	cpu C.ggml_backend_t // the fallback; b itself on the CPU device
	// pool keeps the CPU backend's threads between computes.
	pool *C.struct_ggml_threadpool

	weightGradType struct {
		once sync.Once
		t    Type
	}

	mu        sync.Mutex
	live      int64          // device bytes held now
	peak      int64          // most device bytes held at once
	fallbacks map[string]int // op name -> most nodes of that op one graph ran on the CPU
}

// NewCPUBackend starts ggml's CPU backend with the given thread count.
func NewCPUBackend(threads int) (*Backend, error) {
	initNative()
	b := C.ggml_backend_cpu_init()
	if b == nil {
		return nil, errors.New("ggml CPU backend failed to start")
	}
	n := C.int(max(threads, 1))
	C.ggml_backend_cpu_set_n_threads(b, n)
	// Without a pool of its own, every compute starts and joins its threads;
	// a timed compute (ComputeTimed) is one compute per node, and on a busy
	// machine a fresh thread can wait a whole time slice to start.
	params := C.ggml_threadpool_params_default(n)
	pool := C.ggml_threadpool_new(&params)
	if pool == nil {
		C.ggml_backend_free(b)
		return nil, errors.New("ggml CPU thread pool failed to start")
	}
	C.ggml_backend_cpu_set_threadpool(b, pool)
	return &Backend{b: b, cpu: b, pool: pool}, nil
}

// newBackend starts the backend of a device (from ggml's device registry),
// with a CPU backend behind it unless the device is the CPU.
func newBackend(dev C.ggml_backend_dev_t, threads int) (*Backend, error) {
	initNative()
	if C.ggml_backend_dev_type(dev) == C.GGML_BACKEND_DEVICE_TYPE_CPU {
		return NewCPUBackend(threads)
	}
	b := C.ggml_backend_dev_init(dev, nil)
	if b == nil {
		d := Device{dev}
		return nil, nativeError(fmt.Sprintf("starting a backend on %s (%s)", d.Name(), d.Description()))
	}
	cpu, err := NewCPUBackend(threads)
	if err != nil {
		C.ggml_backend_free(b)
		return nil, err
	}
	return &Backend{b: b, cpu: cpu.b, pool: cpu.pool}, nil
}

// Name is the backend's name ("CPU", "Vulkan0", "CUDA0", ...).
func (b *Backend) Name() string { return C.GoString(C.ggml_backend_name(b.b)) }

// IsCPU reports whether the device is the CPU.
func (b *Backend) IsCPU() bool { return b.b == b.cpu }

// Kind is the device's kind, as in --device: "cpu", "vulkan", "cuda".
func (b *Backend) Kind() string { return b.device().Kind() }

// device is the ggml device the backend runs on.
func (b *Backend) device() Device { return Device{C.ggml_backend_get_device(b.b)} }

// TrainingSupported says whether ragtune trains on this backend's device
// with segmented graphs (recomputation or GradCache: one graph per model
// segment or chunk); one graph per step runs everywhere. Mesa's lavapipe
// before 25.0 corrupts its own heap running segmented graphs (a double
// free in its queue thread, 6 of 12 runs on Mesa 22.3.6; none in 9 on
// Mesa 25.0.7), so they are refused there (docs/ARCHITECTURE.md).
func (b *Backend) TrainingSupported(segmented bool) error {
	if !segmented || b.IsCPU() {
		return nil
	}
	d := b.device()
	return segmentedTraining(d.Description(), d.Driver())
}

// WeightGradType is the type of the transposed copy of a frozen weight
// (f16, bf16 or quantized) that the product for its input's gradient
// reads (Graph.BuildBackward): bf16 on a device that converts f32 to
// bf16, transposes bf16 and multiplies bf16 by f32 itself, else f32. bf16
// keeps f32's exponent range, so gradients far below f16's smallest
// normal keep their value with no loss scaling, and on CUDA (Ampere and
// later) the product runs on tensor cores accumulating in f32 (cuBLAS
// GemmEx) where an f32 one runs cublasSgemm. The CPU's is f32: ragtune's
// own kernels multiply f32.
func (b *Backend) WeightGradType() Type {
	b.weightGradType.once.Do(func() {
		b.weightGradType.t = TypeF32
		if !b.IsCPU() && b.runsBF16Products() {
			b.weightGradType.t = TypeBF16
		}
	})
	return b.weightGradType.t
}

// runsBF16Products asks the device whether it runs, itself, the ops of a
// bf16 backward product as transposedOperand builds it: the f32-to-bf16
// conversion of a weight, the transposing bf16 copy and the product with
// an f32 gradient.
func (b *Backend) runsBF16Products() bool {
	ctx := C.ggml_init(C.struct_ggml_init_params{mem_size: 8 * C.ggml_tensor_overhead(), no_alloc: true})
	if ctx == nil {
		return false
	}
	defer C.ggml_free(ctx)
	w := C.ggml_cast(ctx, C.ggml_new_tensor_2d(ctx, C.GGML_TYPE_F32, 64, 32), C.GGML_TYPE_BF16)
	wt := C.ggml_cont(ctx, C.ggml_transpose(ctx, w))
	dy := C.ggml_new_tensor_2d(ctx, C.GGML_TYPE_F32, 32, 16)
	dx := C.ggml_mul_mat(ctx, wt, dy)
	return b.runs(w) && b.runs(wt) && b.runs(dx)
}

// driverMesaLLVMPipe is VK_DRIVER_ID_MESA_LLVMPIPE: lavapipe.
const driverMesaLLVMPipe = 13

var mesaVersion = regexp.MustCompile(`Mesa (\d+)\.`)

// isLavapipe tells Mesa's software device by its driver, or by its
// description where the driver is unknown.
func isLavapipe(description string, drv Driver) bool {
	return drv.ID == driverMesaLLVMPipe || (drv.ID == 0 && strings.HasPrefix(description, "llvmpipe"))
}

// segmentedTraining is TrainingSupported's rule for a GPU, from its
// description and driver: lavapipe older than Mesa 25, or of a version
// that cannot be told, is refused.
func segmentedTraining(description string, drv Driver) error {
	if !isLavapipe(description, drv) {
		return nil
	}
	if m := mesaVersion.FindStringSubmatch(drv.Info); m != nil {
		if major, _ := strconv.Atoi(m[1]); major >= 25 {
			return nil
		}
	}
	version := drv.Info
	if version == "" {
		version = "driver version unknown"
	}
	return fmt.Errorf("recomputation and grad-cache are refused on %s (%s): lavapipe before Mesa 25 corrupts its heap running their per-segment graphs; "+
		"train with --recompute off and no --grad-cache, or upgrade Mesa (Debian 12: mesa-vulkan-drivers from bookworm-backports)", description, version)
}

// Close stops the backend.
func (b *Backend) Close() {
	if b == nil || b.b == nil {
		return
	}
	if b.cpu != b.b {
		C.ggml_backend_free(b.cpu)
	}
	C.ggml_backend_free(b.b)
	if b.pool != nil {
		C.ggml_threadpool_free(b.pool)
	}
	b.b, b.cpu, b.pool = nil, nil, nil
}

// PeakDeviceBytes is the most memory the device's ggml buffers (weights,
// adapters, compute buffers) held at once since the backend started: the
// original work's max_vram_gb, from ggml's own sizes. On the CPU device it
// is the host memory of those buffers.
func (b *Backend) PeakDeviceBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// Fallbacks counts, per op name ("OUT_PROD", ...), the nodes of one graph
// that ran on the CPU because the device lacks them (the most over the
// graphs allocated so far). Empty on the CPU device, and when the device
// runs everything.
func (b *Backend) Fallbacks() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.fallbacks)
}

// Usage is what a run did on its device, for summaries and --json.
type Usage struct {
	Device          string         `json:"device"` // the backend's name: "CPU", "Vulkan0", ...
	PeakDeviceBytes int64          `json:"peak_device_bytes"`
	Fallbacks       map[string]int `json:"cpu_fallback_ops,omitempty"`
}

// Usage reports the device, its peak memory and the ops that fell back.
func (b *Backend) Usage() Usage {
	return Usage{Device: b.Name(), PeakDeviceBytes: b.PeakDeviceBytes(), Fallbacks: b.Fallbacks()}
}

// Summary is one line for a run's summary: "device Vulkan0, peak 120.5 MiB, CPU fallback: CUSTOM 3".
func (u Usage) Summary() string {
	s := fmt.Sprintf("device %s, peak %.1f MiB", u.Device, float64(u.PeakDeviceBytes)/(1<<20))
	if len(u.Fallbacks) == 0 {
		return s
	}
	var ops []string
	for _, op := range slices.Sorted(maps.Keys(u.Fallbacks)) {
		ops = append(ops, fmt.Sprintf("%s %d", op, u.Fallbacks[op]))
	}
	return s + ", CPU fallback: " + strings.Join(ops, ", ")
}

// account adds delta bytes of device memory.
func (b *Backend) account(delta int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.live += delta
	b.peak = max(b.peak, b.live)
}

func (b *Backend) noteFallbacks(counts map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for op, n := range counts {
		if b.fallbacks == nil {
			b.fallbacks = map[string]int{}
		}
		b.fallbacks[op] = max(b.fallbacks[op], n)
	}
}

// Buffer is backend memory holding the data of a context's tensors.
type Buffer struct {
	buf     C.ggml_backend_buffer_t
	be      *Backend
	tensors []*C.struct_ggml_tensor
}

// persistent holds the tensors placed by AllocTensors (weights, adapters,
// optimizer inputs): every other tensor a graph reads was placed by a
// graph allocator. Tensors, not buffers: a graph allocator's buffer may be
// freed and a persistent one made at the same address, and a tensor left
// pointing at the old one must not pass for persistent.
var persistent sync.Map // *C.struct_ggml_tensor -> struct{}

// forgetPlacement clears where a graph allocator put g's tensors. ggml's
// allocator only places tensors whose data is NULL, so a graph placed
// before the allocator's buffer grew (and was freed), or placed by another
// graph sharing its tensors, would keep pointers into memory now used
// otherwise. Persistent tensors are kept; nothing here reads through a
// possibly freed pointer.
func (g *Graph) forgetPlacement() {
	forget := func(t *C.struct_ggml_tensor) {
		if t == nil || t.buffer == nil {
			return
		}
		if _, ok := persistent.Load(t); ok {
			return
		}
		t.data = nil
		t.buffer = nil
	}
	for i := 0; i < int(C.ggml_graph_n_nodes(g.g)); i++ {
		n := C.ggml_graph_node(g.g, C.int(i))
		forget(n)
		for j := 0; j < C.GGML_MAX_SRC; j++ {
			forget(n.src[j])
		}
	}
}

// AllocTensors allocates device memory for every tensor of ctx that has
// none yet. The buffer is marked as holding weights, so the scheduler runs
// the operations that read them where they are.
func (b *Backend) AllocTensors(ctx *Context) (*Buffer, error) {
	if ctx.err != nil {
		return nil, ctx.err
	}
	var placed []*C.struct_ggml_tensor
	for t := C.ggml_get_first_tensor(ctx.c); t != nil; t = C.ggml_get_next_tensor(ctx.c, t) {
		if t.buffer == nil {
			placed = append(placed, t)
		}
	}
	buf := C.ggml_backend_alloc_ctx_tensors(ctx.c, b.b)
	if buf == nil {
		return nil, fmt.Errorf("allocating %s memory for tensors failed (out of memory, or no tensors)", b.Name())
	}
	C.ggml_backend_buffer_set_usage(buf, C.GGML_BACKEND_BUFFER_USAGE_WEIGHTS)
	// A device with a small largest allocation gets several buffers behind
	// one: every tensor that had no memory before has some now.
	for _, t := range placed {
		persistent.Store(t, struct{}{})
	}
	out := &Buffer{buf: buf, be: b, tensors: placed}
	b.account(int64(out.Size()))
	return out, nil
}

// Size is the buffer's size in bytes.
func (buf *Buffer) Size() int { return int(C.ggml_backend_buffer_get_size(buf.buf)) }

// Clear sets every byte of the buffer to zero.
func (buf *Buffer) Clear() { C.ggml_backend_buffer_clear(buf.buf, 0) }

// SupportsOp reports whether the device runs node t itself (rather than
// the scheduler falling back to the CPU for it).
func (b *Backend) SupportsOp(t Tensor) bool { return bool(C.ggml_backend_supports_op(b.b, t.t)) }

// Holds reports whether t's memory is in a buffer the device computes on
// directly: an operation that writes t in place there writes t itself, not
// a copy the scheduler made on another backend.
func (b *Backend) Holds(t Tensor) bool {
	return t.t.buffer != nil && bool(C.ggml_backend_supports_buft(b.b, C.ggml_backend_buffer_get_type(t.t.buffer)))
}

// Close frees the buffer.
func (buf *Buffer) Close() {
	if buf != nil && buf.buf != nil {
		for _, t := range buf.tensors {
			persistent.Delete(t)
		}
		buf.tensors = nil
		buf.be.account(-int64(buf.Size()))
		C.ggml_backend_buffer_free(buf.buf)
		buf.buf = nil
	}
}

// OpenBackend starts the backend of the device a --device value names
// (see SelectDevice); "" is the CPU, without looking for GPU libraries.
func OpenBackend(spec string, threads int) (*Backend, error) {
	if spec == "" {
		return NewCPUBackend(threads)
	}
	d, err := SelectDevice(spec)
	if err != nil {
		return nil, err
	}
	return d.NewBackend(threads)
}
