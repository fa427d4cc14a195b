package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/bindings"
)

// deviceFlag is --device, for every command that runs a model.
func deviceFlag() ucli.Flag {
	return &ucli.StringFlag{
		Name:    "device",
		Value:   "auto",
		EnvVars: []string{"RAGTUNE_DEVICE"},
		Usage:   "where models run: auto (the first GPU whose backend library loads, else the CPU), cpu, cuda[:N] or vulkan[:N]",
	}
}

// selectDevice resolves --device and says on stderr which device was picked.
func selectDevice(c *ucli.Context) (bindings.Device, error) {
	spec := c.String("device")
	d, err := bindings.SelectDevice(spec)
	if err != nil {
		return bindings.Device{}, fmt.Errorf("--device %s: %w", spec, err)
	}
	fmt.Fprintf(c.App.ErrWriter, "device: %s\n", describeDevice(d))
	return d, nil
}

// describeDevice is one line about a device: spec, description, memory.
func describeDevice(d bindings.Device) string {
	free, total := d.Memory()
	return fmt.Sprintf("%s (%s, %s free of %s)", d.Spec(), d.Description(), gib(free), gib(total))
}

func gib(n uint64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }
