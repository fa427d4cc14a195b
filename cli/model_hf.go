package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safetensors"
	"github.com/ragtune/ragtune/tune/hfconvert"
)

// modelConvertCommand is `ragtune model convert HF_DIR OUT.gguf`.
func modelConvertCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "convert",
		Usage:     "convert a Hugging Face / sentence-transformers folder (safetensors) to GGUF as llama.cpp's converter does",
		ArgsUsage: "HF_DIR OUT.gguf",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "type", Value: "f32", Usage: "type of the weight matrices: f32, f16, bf16, q8_0, q4_0 or q4_k (norms and biases stay f32)"},
			&ucli.StringFlag{Name: "pooling", Usage: "mean, cls, last or none: overrides the folder's Pooling module (required when it has none, except llama)"},
			&ucli.StringFlag{Name: "name", Usage: "general.name to write (default: the folder's name)"},
			&ucli.BoolFlag{Name: "quiet", Usage: "no progress line"},
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON report"},
		},
		Action: runModelConvert,
	}
}

// modelExportCommand is `ragtune model export --hf OUT_DIR MODEL.gguf`.
func modelExportCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "export",
		Usage:     "write a (merged) GGUF model as a sentence-transformers folder: config.json, model.safetensors, tokenizer, modules.json, pooling",
		ArgsUsage: "MODEL.gguf",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "hf", Required: true, Usage: "folder to write"},
			&ucli.StringFlag{Name: "dtype", Value: "f32", Usage: "f32, f16 or bf16 for model.safetensors"},
			&ucli.BoolFlag{Name: "normalize", Usage: "add a Normalize module (L2-normalised embeddings, as ragtune embed --normalize)"},
			&ucli.BoolFlag{Name: "quiet", Usage: "no progress line"},
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON report"},
		},
		Action: runModelExport,
	}
}

func runModelConvert(c *ucli.Context) error {
	if c.NArg() != 2 {
		return fmt.Errorf("model convert takes HF_DIR OUT.gguf, got %d arguments", c.NArg())
	}
	typ, err := gguf.ParseTensorType(c.String("type"))
	if err != nil {
		return fmt.Errorf("--type: %w", err)
	}
	bar := newProgress("convert", 0, c.Bool("quiet") || c.Bool("json"))
	rep, err := hfconvert.Convert(c.Args().Get(0), c.Args().Get(1), hfconvert.Options{
		Type: typ, Pooling: c.String("pooling"), Name: c.String("name"),
		Progress: func(done, total int, name string) { bar.total = total; bar.Update(done, name) },
	})
	bar.Done()
	if err != nil {
		return fmt.Errorf("model convert: %w", err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s: %s (%s) as %s, %d tensors, %.1f M parameters, %.2f MiB\n",
		rep.Out, rep.Architecture, rep.In, rep.Arch, rep.Tensors, float64(rep.Params)/1e6, float64(rep.BytesOut)/(1<<20))
	fmt.Fprintf(w, "  tokenizer %s (pre %s) from %s, %d tokens; pooling %s", rep.Tokenizer, rep.TokenizerPre, rep.TokenizerSrc, rep.Vocab, orNone(rep.Pooling))
	if rep.Dense > 0 {
		fmt.Fprintf(w, "; %d dense projections", rep.Dense)
	}
	fmt.Fprintln(w)
	if rep.Normalize {
		fmt.Fprintln(w, "  the folder normalises embeddings: pass --normalize to ragtune embed")
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func runModelExport(c *ucli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("model export takes one GGUF model, got %d arguments", c.NArg())
	}
	dtype := safetensors.DType(strings.ToUpper(c.String("dtype")))
	bar := newProgress("export", 0, c.Bool("quiet") || c.Bool("json"))
	rep, err := hfconvert.Export(c.Args().First(), c.String("hf"), hfconvert.ExportOptions{
		DType:     dtype,
		Normalize: c.Bool("normalize"),
		Progress:  func(done, total int, name string) { bar.total = total; bar.Update(done, name) },
	})
	bar.Done()
	if err != nil {
		return fmt.Errorf("model export: %w", err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
	fmt.Fprintf(c.App.Writer, "wrote %s: %s as a sentence-transformers folder, %d tensors, pooling %s, tokenizer %s\n  files: %s\n",
		rep.Out, rep.Arch, rep.Tensors, rep.Pooling, rep.Tokenizer, strings.Join(rep.Files, ", "))
	for _, n := range rep.Notes {
		fmt.Fprintf(c.App.Writer, "  note: %s\n", n)
	}
	return nil
}
