package bindings

// #cgo LDFLAGS: -ldl
// #include <dlfcn.h>
// #include <stdlib.h>
// #include "ggml.h"
// #include "ggml-backend.h"
// #include "ggml-cpu.h"
// void ragtune_log_sink(enum ggml_log_level level, const char *text, void *user_data);
// static const char *ragtune_call_source_id(void *f) { return ((const char *(*)(void)) f)(); }
// static int ragtune_call_vk_driver(void *f, const char *name, char *out, size_t n) { return ((int (*)(const char *, char *, size_t)) f)(name, out, n); }
// static void ragtune_call_log_set(void *f) { ((void (*)(ggml_log_callback, void *)) f)(ragtune_log_sink, NULL); }
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// A Device is one ggml backend device: the CPU, or a GPU of a loaded
// backend library.
type Device struct{ d C.ggml_backend_dev_t }

// Name is ggml's name for the device ("CPU", "Vulkan0", "CUDA0").
func (d Device) Name() string { return C.GoString(C.ggml_backend_dev_name(d.d)) }

// Description is the driver's description ("NVIDIA H100 80GB HBM3", ...).
func (d Device) Description() string { return C.GoString(C.ggml_backend_dev_description(d.d)) }

// Kind is the device's backend in lower case: "cpu", "vulkan", "cuda".
func (d Device) Kind() string {
	return strings.ToLower(C.GoString(C.ggml_backend_reg_name(C.ggml_backend_dev_backend_reg(d.d))))
}

// Index is N in kind:N, the device's position among its backend's devices.
func (d Device) Index() int {
	n := 0
	for _, o := range Devices() {
		if o.d == d.d {
			return n
		}
		if o.Kind() == d.Kind() {
			n++
		}
	}
	return -1
}

// Spec is the device as --device names it ("cpu", "vulkan:0").
func (d Device) Spec() string {
	if d.IsCPU() {
		return "cpu"
	}
	return d.Kind() + ":" + strconv.Itoa(d.Index())
}

// Memory is the device's free and total memory in bytes, as its driver reports them.
func (d Device) Memory() (free, total uint64) {
	var f, t C.size_t
	C.ggml_backend_dev_memory(d.d, &f, &t)
	return uint64(f), uint64(t)
}

// Driver is what runs a GPU, as Vulkan reports it.
type Driver struct {
	ID   int    `json:"id"`   // VkDriverId, 0 where unknown
	Name string `json:"name"` // "llvmpipe", "radv", "NVIDIA"
	Info string `json:"info"` // the version: "Mesa 25.0.7 (LLVM 15.0.6)", "570.86"
}

// vkDriver is the loaded Vulkan library's ragtune_vk_driver (nil before it
// loads, or for a library built without it).
var vkDriver unsafe.Pointer

// Driver is the device's driver: known for Vulkan devices, whose library
// asks Vulkan; the zero Driver for the others.
func (d Device) Driver() Driver {
	if vkDriver == nil || d.Kind() != "vulkan" {
		return Driver{}
	}
	name := C.CString(d.Description())
	defer C.free(unsafe.Pointer(name))
	const size = 1024
	out := (*C.char)(C.calloc(size, 1))
	defer C.free(unsafe.Pointer(out))
	if C.ragtune_call_vk_driver(vkDriver, name, out, size) != 0 {
		return Driver{}
	}
	fields := strings.SplitN(C.GoString(out), "\t", 3)
	id, err := strconv.Atoi(fields[0])
	if err != nil || len(fields) != 3 {
		return Driver{}
	}
	return Driver{ID: id, Name: fields[1], Info: fields[2]}
}

// IsCPU says whether this is ggml's CPU device.
func (d Device) IsCPU() bool {
	return C.ggml_backend_dev_type(d.d) == C.GGML_BACKEND_DEVICE_TYPE_CPU
}

// NewBackend starts a backend on the device; threads applies to the CPU.
// A GPU's backend has the CPU backend behind it (see Backend).
func (d Device) NewBackend(threads int) (*Backend, error) { return newBackend(d.d, threads) }

// BackendLibrary is one GPU backend library ragtune looked for, and what came of it.
type BackendLibrary struct {
	Kind   string `json:"kind"`   // "vulkan", "cuda"
	Path   string `json:"path"`   // empty when no file was found
	Loaded bool   `json:"loaded"` // its devices are in Devices()
	Reason string `json:"reason,omitempty"`
}

// backendKinds are the GPU backends ragtune builds (scripts/build-backend),
// with ggml's registry name, file name and make target.
var backendKinds = []struct{ kind, ggmlName, file, target string }{
	{"cuda", "CUDA", "libggml-cuda.so", "make cuda"},
	{"vulkan", "Vulkan", "libggml-vulkan.so", "make vulkan"},
}

var (
	loadOnce  sync.Once
	libraries []BackendLibrary
)

// LoadBackends loads the GPU backend libraries built from this binary's
// ggml sources, once per process, and reports every library looked for.
// A library is looked for in $RAGTUNE_BACKEND_DIR (a path list), in lib/
// beside the executable and beside it, then in scripts/build-backend's
// cache; the first one built from the same sources wins.
func LoadBackends() []BackendLibrary {
	loadOnce.Do(func() {
		initNative()
		// ggml-vulkan reorders the nodes of each split in the caller's
		// graph; with ragtune's graphs, which are cached and allocated
		// again, that broke training on lavapipe (wrong losses, then a
		// corrupted heap). The reordering only saves time.
		if _, ok := os.LookupEnv("GGML_VK_DISABLE_GRAPH_OPTIMIZE"); !ok {
			os.Setenv("GGML_VK_DISABLE_GRAPH_OPTIMIZE", "1")
		}
		// lavapipe runs a dispatch's workgroups on several threads, and then
		// some of ggml's matrix products come out with whole output tiles
		// missing (zeros or stale values, varying by run; Mesa 22.3.6), and
		// on Mesa 25.0.7 a MiniLM-shaped LoRA step's gradient norm came out
		// 138 against the CPU's 1.03; on one thread both are right. It is
		// read by Mesa's software rasteriser alone, so real GPUs are
		// unaffected, and it must be set before the driver loads.
		if _, ok := os.LookupEnv("LP_NUM_THREADS"); !ok {
			os.Setenv("LP_NUM_THREADS", "1")
		}
		want := SourceID()
		for _, k := range backendKinds {
			libraries = append(libraries, loadKind(k.kind, k.file, want)...)
		}
	})
	return append([]BackendLibrary(nil), libraries...)
}

func loadKind(kind, file, want string) []BackendLibrary {
	var out []BackendLibrary
	for _, dir := range BackendDirs(kind) {
		path := filepath.Join(dir, file)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		lib := BackendLibrary{Kind: kind, Path: path}
		h, err := load(path, want)
		if err != nil {
			lib.Reason = err.Error()
			out = append(out, lib)
			continue
		}
		if kind == "vulkan" {
			vkDriver = dlsym(h, "ragtune_vk_driver")
		}
		lib.Loaded = true
		return append(out, lib)
	}
	if len(out) == 0 {
		out = append(out, BackendLibrary{Kind: kind, Reason: "not found"})
	}
	return out
}

// BackendDirs are the folders searched for kind's library, in order: the
// installed ones (installDirs), then the build cache.
func BackendDirs(kind string) []string {
	cached, _ := filepath.Glob(filepath.Join(cacheDir(), "backends", kind+"-*", "lib"))
	return append(installDirs(), cached...)
}

// installDirs are where a library is installed for use: $RAGTUNE_BACKEND_DIR,
// lib/ beside the binary (make vulkan and make cuda put them there) and the
// binary's own folder.
func installDirs() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv("RAGTUNE_BACKEND_DIR")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "lib"), filepath.Dir(exe))
	}
	return dirs
}

// installed reports whether any backend library is installed (not only
// built in the cache). "auto" loads libraries only then: a library in the
// cache is used when its device is named, so a process that did not ask
// for a GPU never maps one (loading a backend brings its own ggml and the
// device's driver into the process; lavapipe's has been seen to disturb
// later CPU results there).
func installed() bool {
	for _, k := range backendKinds {
		for _, dir := range installDirs() {
			if _, err := os.Stat(filepath.Join(dir, k.file)); err == nil {
				return true
			}
		}
	}
	return false
}

func cacheDir() string {
	if d := os.Getenv("RAGTUNE_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ragtune")
}

// load checks that the library at path was built from want's sources,
// points its ggml log at ours (it carries its own ggml-base, whose log
// would otherwise go to stderr), and registers it with ggml; it returns
// the library's handle.
func load(path, want string) (unsafe.Pointer, error) {
	// The handle stays open when the library is kept: ggml opens it again
	// and, like ggml, ragtune never unloads a backend.
	h, err := openChecked(path, want)
	if err != nil {
		return nil, err
	}
	if f := dlsym(h, "ggml_log_set"); f != nil {
		C.ragtune_call_log_set(f)
	}
	nativeLog() // drop what came before
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if C.ggml_backend_load(cpath) == nil {
		why := strings.TrimSpace(nativeLog())
		if why == "" {
			why = "ggml did not register it (no usable device, or a driver it cannot use)"
		}
		return nil, errors.New(why)
	}
	return h, nil
}

// openChecked opens the library at path if it was built from want's sources.
func openChecked(path, want string) (unsafe.Pointer, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	h := C.dlopen(cpath, C.RTLD_NOW|C.RTLD_LOCAL)
	if h == nil {
		return nil, fmt.Errorf("cannot be opened: %s", C.GoString(C.dlerror()))
	}
	if err := checkSourceID(h, want); err != nil {
		C.dlclose(h)
		return nil, err
	}
	return h, nil
}

// CheckLibrary says whether the library at path may be loaded by a binary
// built from want's sources, without registering it.
func CheckLibrary(path, want string) error {
	h, err := openChecked(path, want)
	if err == nil {
		C.dlclose(h)
	}
	return err
}

func dlsym(h unsafe.Pointer, name string) unsafe.Pointer {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	return C.dlsym(h, cname)
}

// checkSourceID refuses a library built from other ggml sources than want:
// ggml's structs cross the library boundary as they are, so a mismatch
// would corrupt memory rather than fail cleanly.
func checkSourceID(h unsafe.Pointer, want string) error {
	f := dlsym(h, "ragtune_ggml_source_id")
	if f == nil {
		return errors.New("not built by ragtune (no ragtune_ggml_source_id): build it with scripts/build-backend")
	}
	if got := C.GoString(C.ragtune_call_source_id(f)); got != want {
		return fmt.Errorf("built from other ggml sources (%s; this binary: %s): rebuild it", got, want)
	}
	return nil
}

// ggmlSourceID is SourceID where the build carries no module information
// (test binaries): go.mod's version of the module and go.sum's checksum of
// it (a test keeps the two in step).
const ggmlSourceID = "github.com/ollama/ollama@v0.17.4 h1:X3KNm9x4BlHqk/AXMGtC7pBAFd46nmJmy8yDaBZLo9s="

// SourceID names the ggml sources this binary was compiled from: the ollama
// module's path, version and checksum, as scripts/build-backend writes them
// into the libraries it builds.
func SourceID() string {
	const module = "github.com/ollama/ollama"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Path != module {
				continue
			}
			if m.Replace != nil {
				m = m.Replace
			}
			return m.Path + "@" + m.Version + " " + m.Sum
		}
	}
	return ggmlSourceID
}

// Devices lists the CPU first, then the devices of the loaded GPU libraries.
func Devices() []Device {
	initNative()
	var cpu, gpus []Device
	for i := C.size_t(0); i < C.ggml_backend_dev_count(); i++ {
		d := Device{C.ggml_backend_dev_get(i)}
		switch C.ggml_backend_dev_type(d.d) {
		case C.GGML_BACKEND_DEVICE_TYPE_CPU:
			cpu = append(cpu, d)
		case C.GGML_BACKEND_DEVICE_TYPE_GPU, C.GGML_BACKEND_DEVICE_TYPE_IGPU:
			gpus = append(gpus, d)
		}
	}
	return append(cpu, gpus...)
}

// SelectDevice resolves a --device value: "auto" (the first GPU of an
// installed library that loads, else the CPU), "cpu", "cuda[:N]" or
// "vulkan[:N]" (searched in the build cache too).
func SelectDevice(spec string) (Device, error) {
	spec = strings.ToLower(strings.TrimSpace(spec))
	kind, index, hasIndex := strings.Cut(spec, ":")
	n := 0
	if hasIndex {
		var err error
		if n, err = strconv.Atoi(index); err != nil || n < 0 {
			return Device{}, fmt.Errorf("bad device index %q (want e.g. %s:0)", index, kind)
		}
	}
	switch kind {
	case "", "auto", "cpu":
		if hasIndex {
			return Device{}, fmt.Errorf("%q takes no index", kind)
		}
		if kind != "cpu" {
			if installed() {
				LoadBackends()
			}
			for _, d := range Devices() { // loaded now, or before by a named device
				if !d.IsCPU() {
					return d, nil
				}
			}
		}
		for _, d := range Devices() {
			if d.IsCPU() {
				return d, nil
			}
		}
		return Device{}, errors.New("ggml has no CPU device")
	}
	for _, k := range backendKinds {
		if k.kind != kind {
			continue
		}
		var same []Device
		LoadBackends()
		for _, d := range Devices() {
			if d.Kind() == kind {
				same = append(same, d)
			}
		}
		if n < len(same) {
			return same[n], nil
		}
		if len(same) > 0 {
			return Device{}, fmt.Errorf("no %s:%d: this machine has %d %s device(s), %s:0 to %s:%d", kind, n, len(same), k.ggmlName, kind, kind, len(same)-1)
		}
		return Device{}, missingLibrary(k.kind, k.ggmlName, k.file, k.target)
	}
	return Device{}, fmt.Errorf("unknown device %q (want auto, cpu, cuda[:N] or vulkan[:N])", spec)
}

// missingLibrary says why a kind has no device and what to do about it.
func missingLibrary(kind, ggmlName, file, target string) error {
	var tried []string
	for _, lib := range LoadBackends() {
		if lib.Kind != kind || lib.Path == "" {
			continue
		}
		if lib.Loaded {
			hint := ""
			if kind == "vulkan" {
				hint = " (a software device such as Mesa's lavapipe is used only when GGML_VK_VISIBLE_DEVICES names it)"
			}
			return fmt.Errorf("the %s library %s loaded but found no device%s", ggmlName, lib.Path, hint)
		}
		tried = append(tried, lib.Path+": "+lib.Reason)
	}
	if len(tried) > 0 {
		return fmt.Errorf("no usable %s backend library (%s); build it with `%s`", ggmlName, strings.Join(tried, "; "), target)
	}
	dirs := append(BackendDirs(kind), filepath.Join(cacheDir(), "backends", kind+"-*", "lib"))
	return fmt.Errorf("no %s backend library found (looked for %s in %s); build it with `%s`, or set RAGTUNE_BACKEND_DIR to its folder",
		ggmlName, file, strings.Join(dirs, ", "), target)
}

// CPUFeatures are the SIMD features ggml's CPU backend was compiled with.
func CPUFeatures() []string {
	all := []struct {
		name string
		has  C.int
	}{
		{"sse3", C.ggml_cpu_has_sse3()}, {"ssse3", C.ggml_cpu_has_ssse3()},
		{"avx", C.ggml_cpu_has_avx()}, {"avx2", C.ggml_cpu_has_avx2()},
		{"avx_vnni", C.ggml_cpu_has_avx_vnni()}, {"bmi2", C.ggml_cpu_has_bmi2()},
		{"f16c", C.ggml_cpu_has_f16c()}, {"fma", C.ggml_cpu_has_fma()},
		{"avx512", C.ggml_cpu_has_avx512()}, {"avx512_vbmi", C.ggml_cpu_has_avx512_vbmi()},
		{"avx512_vnni", C.ggml_cpu_has_avx512_vnni()}, {"avx512_bf16", C.ggml_cpu_has_avx512_bf16()},
		{"amx_int8", C.ggml_cpu_has_amx_int8()}, {"neon", C.ggml_cpu_has_neon()},
		{"arm_fma", C.ggml_cpu_has_arm_fma()}, {"dotprod", C.ggml_cpu_has_dotprod()},
		{"sve", C.ggml_cpu_has_sve()}, {"llamafile", C.ggml_cpu_has_llamafile()},
	}
	var out []string
	for _, f := range all {
		if f.has != 0 {
			out = append(out, f.name)
		}
	}
	return out
}
