package cli

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/tune/adapter"
)

func init() {
	register(&ucli.Command{
		Name:  "adapter",
		Usage: "inspect LoRA adapters (llama.cpp GGUF), merge them into base models, export them for PEFT and import PEFT's",
		Subcommands: []*ucli.Command{
			{
				Name:      "merge",
				Usage:     "write BASE with ADAPTER folded into its weights (W += scale·alpha/r·B·A, as llama.cpp's export-lora)",
				ArgsUsage: "BASE.gguf ADAPTER.gguf OUT.gguf",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "type", Usage: "re-encode the 2-D weights as " + strings.Join(adapter.MergeTypes, "|") + " (default: keep every tensor's type)"},
					&ucli.Float64Flag{Name: "scale", Value: 1, Usage: "user scale of the adapter (llama.cpp's --lora-scaled)"},
					deviceFlag(),
					&ucli.IntFlag{Name: "threads", Value: defaultThreads(), Usage: "CPU threads"},
					&ucli.BoolFlag{Name: "json", Usage: "print a JSON summary"},
				},
				Action: runAdapterMerge,
			},
			{
				Name:      "export",
				Usage:     "write ADAPTER for other tools: a folder in PEFT's format (adapter_config.json, adapter_model.safetensors) for Python, or a checked GGUF copy",
				ArgsUsage: "ADAPTER.gguf OUT_DIR",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "format", Value: "peft", Usage: "peft (Hugging Face module names and layouts) or gguf (OUT_DIR/adapter.gguf, checked as llama.cpp's loader checks it)"},
					&ucli.StringFlag{Name: "model", Usage: "the base model GGUF: the adapter is checked against it; needed for llama's attn_q/attn_k and for a fused attn_qkv with grouped KV heads"},
					&ucli.StringFlag{Name: "base-model", Usage: "Hugging Face id or path of the base model, written as base_model_name_or_path"},
					&ucli.BoolFlag{Name: "json", Usage: "print a JSON summary"},
				},
				Action: runAdapterExport,
			},
			{
				Name:      "import",
				Usage:     "write a PEFT LoRA adapter folder as a llama.cpp GGUF adapter for the base model",
				ArgsUsage: "PEFT_DIR OUT.gguf",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "format", Value: "peft", Usage: "peft (the only form read)"},
					&ucli.StringFlag{Name: "model", Usage: "the base model GGUF the adapter is for (required)"},
					&ucli.BoolFlag{Name: "json", Usage: "print a JSON summary"},
				},
				Action: runAdapterImport,
			},
			{
				Name:      "info",
				Usage:     "describe an adapter: pairs, rank, alpha, targets, metadata",
				ArgsUsage: "ADAPTER.gguf",
				Flags:     []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action:    runAdapterInfo,
			},
		},
	})
}

type mergeSummary struct {
	Base      string         `json:"base"`
	Adapter   string         `json:"adapter"`
	Out       string         `json:"out"`
	Type      string         `json:"type"` // "keep" or the --type
	Scale     float64        `json:"scale"`
	Merged    int            `json:"merged"`
	Copied    int            `json:"copied"`
	Reencoded int            `json:"reencoded"`
	Fallbacks []string       `json:"fallbacks"`
	Types     map[string]int `json:"types"`
	Bytes     int64          `json:"bytes"`
	Device    string         `json:"device"` // the backend that computed the merged weights
	Seconds   float64        `json:"seconds"`
}

func runAdapterMerge(c *ucli.Context) error {
	if c.NArg() != 3 {
		return fmt.Errorf("adapter merge: want BASE.gguf ADAPTER.gguf OUT.gguf, got %d arguments", c.NArg())
	}
	base, ad, out := c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)
	if out == base || out == ad {
		return fmt.Errorf("adapter merge: OUT %s must differ from the inputs", out)
	}
	scale := c.Float64("scale")
	if math.IsNaN(scale) || math.IsInf(scale, 0) {
		return fmt.Errorf("adapter merge: --scale %v is not a number", scale)
	}
	d, err := selectDevice(c)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := adapter.Merge(base, ad, out, adapter.MergeOptions{
		Type: c.String("type"), Scale: float32(scale), Device: d.Spec(), Threads: c.Int("threads"),
	})
	if err != nil {
		return err
	}
	sum := mergeSummary{
		Base: base, Adapter: ad, Out: out, Type: c.String("type"), Scale: scale,
		Merged: res.Merged, Copied: res.Copied, Reencoded: res.Reencoded,
		Fallbacks: append([]string{}, res.Fallbacks...), Types: res.Types, Bytes: res.Bytes,
		Device: res.Device, Seconds: time.Since(start).Seconds(),
	}
	if sum.Type == "" {
		sum.Type = "keep"
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, sum)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s (%s): %d weights merged on %s, %d tensors copied, %d re-encoded, types %s, %.1fs\n",
		out, mergeFileSize(res.Bytes), res.Merged, res.Device, res.Copied, res.Reencoded, mergeTypeCounts(res.Types), sum.Seconds)
	for _, f := range res.Fallbacks {
		fmt.Fprintf(w, "  fallback %s\n", f)
	}
	return nil
}

type exportSummary struct {
	Adapter       string   `json:"adapter"`
	Format        string   `json:"format"`
	Out           string   `json:"out"`
	Files         []string `json:"files"`
	Modules       int      `json:"modules,omitempty"`
	Rank          int      `json:"r,omitempty"`
	Alpha         float64  `json:"lora_alpha,omitempty"`
	RSLoRA        bool     `json:"use_rslora,omitempty"`
	TargetModules []string `json:"target_modules,omitempty"`
	DType         string   `json:"dtype,omitempty"`
	Bytes         int64    `json:"bytes"`
	Notes         []string `json:"notes"`
}

func runAdapterExport(c *ucli.Context) error {
	if c.NArg() != 2 {
		return fmt.Errorf("adapter export: want ADAPTER.gguf OUT_DIR, got %d arguments", c.NArg())
	}
	ad, dir := c.Args().Get(0), c.Args().Get(1)
	sum := exportSummary{Adapter: ad, Format: c.String("format"), Out: dir, Notes: []string{}}
	switch sum.Format {
	case "peft":
		res, err := adapter.ExportPEFT(ad, dir, adapter.PEFTOptions{Model: c.String("model"), BaseModel: c.String("base-model")})
		if err != nil {
			return err
		}
		sum.Files = []string{filepath.Join(dir, adapter.PEFTConfigFile), filepath.Join(dir, adapter.PEFTWeightsFile)}
		sum.Modules, sum.Rank, sum.Alpha, sum.RSLoRA = res.Modules, res.Config.R, res.Config.LoraAlpha, res.Config.UseRSLoRA
		sum.TargetModules, sum.DType, sum.Bytes = res.Config.TargetModules, res.DType, res.Bytes
		sum.Notes = append(sum.Notes, res.Notes...)
	case "gguf":
		if c.String("base-model") != "" {
			return fmt.Errorf("adapter export: --base-model names the base for PEFT; a GGUF adapter has no place for it")
		}
		out, err := adapter.ExportGGUF(ad, dir, c.String("model"))
		if err != nil {
			return err
		}
		sum.Files = []string{out}
		if st, err := os.Stat(out); err == nil {
			sum.Bytes = st.Size()
		}
	default:
		return fmt.Errorf("adapter export: unknown --format %q (want peft or gguf)", sum.Format)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, sum)
	}
	w := c.App.Writer
	if sum.Format == "peft" {
		scaling := "alpha/r"
		if sum.RSLoRA {
			scaling = "alpha/√r (rsLoRA)"
		}
		fmt.Fprintf(w, "wrote %s: PEFT LoRA adapter, %d modules, r %d, lora_alpha %g, scale %s, %s, %s\n",
			dir, sum.Modules, sum.Rank, sum.Alpha, scaling, sum.DType, mergeFileSize(sum.Bytes))
		fmt.Fprintf(w, "  target_modules %s\n", strings.Join(sum.TargetModules, ", "))
	} else {
		fmt.Fprintf(w, "wrote %s (%s): checked as llama.cpp's loader checks it\n", sum.Files[0], mergeFileSize(sum.Bytes))
	}
	for _, n := range sum.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	return nil
}

type importSummary struct {
	PEFTDir string   `json:"peft_dir"`
	Model   string   `json:"model"`
	Out     string   `json:"out"`
	Arch    string   `json:"arch"`
	Pairs   int      `json:"pairs"`
	Alpha   float32  `json:"alpha"`
	Scaling string   `json:"scaling"`
	Bytes   int64    `json:"bytes"`
	Notes   []string `json:"notes"`
}

func runAdapterImport(c *ucli.Context) error {
	if c.NArg() != 2 {
		return fmt.Errorf("adapter import: want PEFT_DIR OUT.gguf, got %d arguments", c.NArg())
	}
	if f := c.String("format"); f != "peft" {
		return fmt.Errorf("adapter import: unknown --format %q (only peft is read; a GGUF adapter needs no import)", f)
	}
	model := c.String("model")
	if model == "" {
		return fmt.Errorf("adapter import: --model BASE.gguf is required (module names, shapes and layouts come from the base)")
	}
	dir, out := c.Args().Get(0), c.Args().Get(1)
	res, err := adapter.ImportPEFT(dir, out, model)
	if err != nil {
		return err
	}
	sum := importSummary{PEFTDir: dir, Model: model, Out: out, Arch: res.Arch, Pairs: res.Pairs, Alpha: res.Alpha,
		Scaling: res.Scaling, Bytes: res.Bytes, Notes: append([]string{}, res.Notes...)}
	if c.Bool("json") {
		return printJSON(c.App.Writer, sum)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s (%s): LoRA adapter for %s, %d pairs, alpha %g (%s scaling)\n", out, mergeFileSize(res.Bytes), res.Arch, res.Pairs, res.Alpha, res.Scaling)
	for _, n := range sum.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	return nil
}

type adapterPairJSON struct {
	Base  string  `json:"base"`
	In    int     `json:"in"`
	Out   int     `json:"out"`
	Rank  int     `json:"rank"`
	Type  string  `json:"type"`
	Scale float32 `json:"scale"` // alpha/r at user scale 1
}

type adapterInfoJSON struct {
	Path    string            `json:"path"`
	Arch    string            `json:"arch"`
	Alpha   float32           `json:"alpha"`
	Rank    int               `json:"rank"` // 0 when the pairs have different ranks
	Ranks   []int             `json:"ranks"`
	Pairs   int               `json:"pairs"`
	Params  int64             `json:"params"`
	Targets []string          `json:"targets"`
	Skipped []string          `json:"skipped"`
	Tensors []adapterPairJSON `json:"tensors"`
	Meta    map[string]string `json:"meta"`
}

func runAdapterInfo(c *ucli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("adapter info: want ADAPTER.gguf, got %d arguments", c.NArg())
	}
	info, err := adapter.Inspect(c.Args().First())
	if err != nil {
		return err
	}
	out := adapterInfoJSON{
		Path: info.Path, Arch: info.Arch, Alpha: info.Alpha, Ranks: info.Ranks(), Pairs: len(info.Pairs),
		Targets: info.Targets, Skipped: append([]string{}, info.Skipped...), Meta: info.Meta,
	}
	if len(out.Ranks) == 1 {
		out.Rank = out.Ranks[0]
	}
	for _, p := range info.Pairs {
		out.Params += p.A.Elements() + p.B.Elements()
		out.Tensors = append(out.Tensors, adapterPairJSON{Base: p.Base, In: p.In, Out: p.Out, Rank: p.Rank, Type: p.A.Type.String(), Scale: p.Scale(info.Alpha, 1)})
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, out)
	}
	printAdapterInfo(c.App.Writer, out)
	return nil
}

func printAdapterInfo(w io.Writer, in adapterInfoJSON) {
	rank := fmt.Sprint(in.Rank)
	if in.Rank == 0 {
		rank = fmt.Sprint(in.Ranks)
	}
	fmt.Fprintf(w, "%s: LoRA adapter for %s\n", in.Path, in.Arch)
	fmt.Fprintf(w, "  pairs %d, rank %s, alpha %g, %d parameters\n", in.Pairs, rank, in.Alpha, in.Params)
	fmt.Fprintf(w, "  targets %s\n", strings.Join(in.Targets, ", "))
	if len(in.Skipped) > 0 {
		fmt.Fprintf(w, "  ignored by llama.cpp: %s\n", strings.Join(in.Skipped, ", "))
	}
	keys := make([]string, 0, len(in.Meta))
	for k := range in.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, in.Meta[k])
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  WEIGHT\tIN\tOUT\tRANK\tTYPE\tSCALE")
	for _, p := range in.Tensors {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\t%g\n", p.Base, p.In, p.Out, p.Rank, p.Type, p.Scale)
	}
	tw.Flush()
}

// typeCounts renders {"f32": 5, "q8_0": 12} as "q8_0×12 f32×5", most first.
func mergeTypeCounts(m map[string]int) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] > m[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s×%d", n, m[n])
	}
	return strings.Join(parts, " ")
}

func mergeFileSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}
