package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/tune/energy"
)

// energyFlags set how runs and trials account for energy (train, tune run).
func energyFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.Float64Flag{Name: "carbon-intensity", Value: energy.DefaultCarbonIntensity,
			Usage: "grid carbon intensity in g CO2eq/kWh for emissions (default: codecarbon's world average, IEA 2019)"},
		&ucli.Float64Flag{Name: "cpu-power", Value: energy.DefaultCPUPower,
			Usage: "CPU package power at full load in W, for the estimate used when RAPL cannot be read (default: codecarbon's 85 W)"},
	}
}

func energyOptions(c *ucli.Context) energy.Options {
	return energy.Options{CarbonIntensity: c.Float64("carbon-intensity"), CPUPower: c.Float64("cpu-power")}
}

// formatEnergy is "0.0123 kWh, 5.84 g CO2eq (475 g/kWh; cpu rapl, ram estimate 10 W)".
func formatEnergy(e *energy.Report) string {
	return fmt.Sprintf("%.4g kWh, %.3g g CO2eq (%g g/kWh; %s)", e.EnergyKWh, e.EmissionsKg*1000, e.CarbonIntensity, e.Method)
}
