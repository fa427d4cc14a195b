package cli

import (
	"fmt"
	"runtime"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/bindings"
)

// modelCommands are the commands that take --device.
var modelCommands = []string{"embed", "index build", "eval", "train", "tune run", "adapter merge"}

func init() {
	register(&ucli.Command{
		Name:      "doctor",
		Usage:     "show what this machine offers: CPU features, memory, GPUs, backend libraries, and the device each command uses",
		ArgsUsage: " ",
		Flags:     []ucli.Flag{deviceFlag(), &ucli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action:    runDoctor,
	})
}

type doctorDevice struct {
	Spec        string `json:"spec"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Kind        string `json:"kind"`
	MemoryFree  uint64 `json:"memory_free"`
	MemoryTotal uint64 `json:"memory_total"`
	// Driver is known for Vulkan devices; training refuses some versions.
	Driver *bindings.Driver `json:"driver,omitempty"`
}

type doctorReport struct {
	GGMLSources string                    `json:"ggml_sources"`
	CPUFeatures []string                  `json:"cpu_features"`
	Threads     int                       `json:"threads"`
	Devices     []doctorDevice            `json:"devices"`
	Libraries   []bindings.BackendLibrary `json:"libraries"`
	SearchDirs  map[string][]string       `json:"search_dirs"`
	Device      string                    `json:"device"` // what --device resolves to
	Commands    map[string]string         `json:"commands"`
}

func runDoctor(c *ucli.Context) error {
	libs := bindings.LoadBackends()
	rep := doctorReport{
		GGMLSources: bindings.SourceID(),
		CPUFeatures: bindings.CPUFeatures(),
		Threads:     defaultThreads(),
		Libraries:   libs,
		SearchDirs:  map[string][]string{},
		Commands:    map[string]string{},
	}
	for _, d := range bindings.Devices() {
		free, total := d.Memory()
		dd := doctorDevice{Spec: d.Spec(), Name: d.Name(), Description: d.Description(), Kind: d.Kind(), MemoryFree: free, MemoryTotal: total}
		if drv := d.Driver(); drv != (bindings.Driver{}) {
			dd.Driver = &drv
		}
		rep.Devices = append(rep.Devices, dd)
	}
	for _, lib := range libs {
		rep.SearchDirs[lib.Kind] = bindings.BackendDirs(lib.Kind)
	}
	spec := c.String("device")
	d, err := bindings.SelectDevice(spec)
	if err != nil {
		return fmt.Errorf("--device %s: %w", spec, err)
	}
	rep.Device = d.Spec()
	for _, name := range modelCommands {
		rep.Commands[name] = d.Spec()
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ggml sources\t%s\n", rep.GGMLSources)
	fmt.Fprintf(tw, "cpu\t%d cores (commands default to %d threads); built with %s\n", runtime.NumCPU(), rep.Threads, strings.Join(rep.CPUFeatures, " "))
	fmt.Fprintf(tw, "devices\t\n")
	for _, dd := range rep.Devices {
		driver := ""
		if dd.Driver != nil {
			driver = fmt.Sprintf("; driver %s, %s", dd.Driver.Name, dd.Driver.Info)
		}
		fmt.Fprintf(tw, "  %s\t%s, %s (%s free of %s%s)\n", dd.Spec, dd.Name, dd.Description, gib(dd.MemoryFree), gib(dd.MemoryTotal), driver)
	}
	fmt.Fprintf(tw, "backend libraries\t\n")
	for _, lib := range libs {
		switch {
		case lib.Loaded:
			fmt.Fprintf(tw, "  %s\tloaded %s\n", lib.Kind, lib.Path)
		case lib.Path == "":
			fmt.Fprintf(tw, "  %s\tnot found (looked in %s; build it with `make %s`)\n", lib.Kind, strings.Join(rep.SearchDirs[lib.Kind], ", "), lib.Kind)
		default:
			fmt.Fprintf(tw, "  %s\tnot loaded %s: %s\n", lib.Kind, lib.Path, lib.Reason)
		}
	}
	fmt.Fprintf(tw, "--device %s\t%s, for %s\n", spec, describeDevice(d), strings.Join(modelCommands, ", "))
	return tw.Flush()
}
