package cli

import (
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/modelinit"
)

func init() { register(modelCommand()) }

// modelCommand is `ragtune model init|info|quantize|convert|export`.
func modelCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "model",
		Usage: "make, inspect and quantize GGUF models",
		Subcommands: []*ucli.Command{
			{
				Name:      "init",
				Usage:     "make a tiny random bert, llama, qwen3, nomic-bert or gemma-embedding model, with a vocabulary learnt from a corpus",
				ArgsUsage: " ",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "arch", Required: true, Usage: "bert, llama, qwen3, nomic-bert or gemma-embedding"},
					&ucli.StringFlag{Name: "corpus", Required: true, Usage: "texts for the vocabulary: one per line, or JSONL with \"text\" (BEIR corpus.jsonl too)"},
					&ucli.StringFlag{Name: "out", Required: true, Usage: "GGUF file to write"},
					&ucli.IntFlag{Name: "layers", Usage: "blocks (default 2; gemma-embedding 6, its minimum)"},
					&ucli.IntFlag{Name: "dim", Usage: "hidden size (default 64)"},
					&ucli.IntFlag{Name: "heads", Usage: "attention heads (default 4)"},
					&ucli.IntFlag{Name: "kv-heads", Usage: "key/value heads, llama and qwen3 (default heads/2)"},
					&ucli.IntFlag{Name: "head-dim", Usage: "qwen3, gemma-embedding: head size when it is not dim/heads (their heads are wider)"},
					&ucli.IntFlag{Name: "window", Usage: "gemma-embedding: sliding window of five layers in six (default 8)"},
					&ucli.IntFlag{Name: "dense", Usage: "gemma-embedding: width of the Dense projections after pooling (default none)"},
					&ucli.BoolFlag{Name: "fused-qkv", Usage: "bert: one attn_qkv matrix per layer instead of attn_q/k/v (nomic-bert always has one)"},
					&ucli.IntFlag{Name: "ff", Usage: "feed-forward width (default 128)"},
					&ucli.IntFlag{Name: "ctx", Usage: "context length (default 64 bert and nomic-bert, 128 llama, qwen3 and gemma-embedding)"},
					&ucli.IntFlag{Name: "vocab", Usage: "vocabulary size, at most (default 1000)"},
					&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed of the weights"},
					&ucli.StringFlag{Name: "pooling", Usage: "bert, nomic-bert, gemma-embedding: mean (default), cls, last (bert: or none); qwen3: last (default), mean or cls; llama always pools the last token"},
					&ucli.StringFlag{Name: "type", Value: "f32", Usage: "type of the weight matrices: f32, f16, bf16, q8_0, q4_0 or q4_k"},
					&ucli.BoolFlag{Name: "output-head", Usage: "llama: write output.weight instead of tying it to token_embd"},
					&ucli.StringFlag{Name: "chat-template", Usage: "llama: tokenizer.chat_template to write (a Jinja template llama.cpp recognises, e.g. ChatML's), for a tiny test generator"},
					&ucli.BoolFlag{Name: "json", Usage: "print the model summary as JSON"},
				},
				Action: runModelInit,
			},
			{
				Name:      "info",
				Usage:     "describe a GGUF model or LoRA adapter; fails when llama.cpp would refuse the model",
				ArgsUsage: "M.gguf",
				Flags:     []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action:    runModelInfo,
			},
			{
				Name:      "quantize",
				Usage:     "re-encode a model's weight matrices (norms, biases and bert's position/token-type tables stay as they are)",
				ArgsUsage: "IN.gguf OUT.gguf",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "type", Required: true, Usage: "f16, q8_0, q4_0 or q4_k (rows not a multiple of 256 fall back to q5_0, as llama-quantize does)"},
					&ucli.BoolFlag{Name: "json", Usage: "print a JSON report"},
				},
				Action: runModelQuantize,
			},
			modelConvertCommand(),
			modelExportCommand(),
		},
	}
}

// modelInitOptions reads the flags of `model init`.
func modelInitOptions(c *ucli.Context) (modelinit.Options, error) {
	typ, err := gguf.ParseTensorType(c.String("type"))
	if err != nil {
		return modelinit.Options{}, fmt.Errorf("--type: %w", err)
	}
	texts, err := modelinit.ReadCorpus(c.String("corpus"))
	if err != nil {
		return modelinit.Options{}, fmt.Errorf("--corpus: %w", err)
	}
	return modelinit.Options{
		Arch: c.String("arch"), Texts: texts,
		Layers: c.Int("layers"), Dim: c.Int("dim"), Heads: c.Int("heads"), KVHeads: c.Int("kv-heads"), HeadDim: c.Int("head-dim"), FusedQKV: c.Bool("fused-qkv"),
		Window: c.Int("window"), Dense: c.Int("dense"),
		FF: c.Int("ff"), Ctx: c.Int("ctx"), Vocab: c.Int("vocab"), Seed: c.Uint64("seed"),
		Pooling: c.String("pooling"), Type: typ, OutputHead: c.Bool("output-head"),
		ChatTemplate: c.String("chat-template"),
	}, nil
}

func runModelInit(c *ucli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("model init takes no arguments, got %q", c.Args().Slice())
	}
	o, err := modelInitOptions(c)
	if err != nil {
		return err
	}
	out := c.String("out")
	res, err := modelinit.Write(out, o)
	if err != nil {
		return fmt.Errorf("model init: %w", err)
	}
	if !c.Bool("json") && res.Vocab.Dropped > 0 {
		fmt.Fprintf(c.App.ErrWriter, "note: %d rare characters did not fit in the vocabulary\n", res.Vocab.Dropped)
	}
	return printModelInfo(c.App.Writer, out, c.Bool("json"))
}

func runModelInfo(c *ucli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("model info takes one GGUF file, got %d arguments", c.NArg())
	}
	return printModelInfo(c.App.Writer, c.Args().First(), c.Bool("json"))
}

// printModelInfo describes a file, and fails (after printing) when llama.cpp
// would refuse it.
func printModelInfo(w io.Writer, path string, asJSON bool) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info := modelinit.Describe(f)
	if asJSON {
		err = printJSON(w, info)
	} else {
		_, err = io.WriteString(w, info.Text())
	}
	if err != nil {
		return err
	}
	if info.Problem != "" {
		return fmt.Errorf("%s", info.Problem)
	}
	if info.Adapter != nil && len(info.Adapter.Problems) > 0 {
		return fmt.Errorf("%s: %s", path, info.Adapter.Problems[0])
	}
	return nil
}

func runModelQuantize(c *ucli.Context) error {
	if c.NArg() != 2 {
		return fmt.Errorf("model quantize takes IN.gguf OUT.gguf, got %d arguments", c.NArg())
	}
	typ, err := gguf.ParseTensorType(c.String("type"))
	if err != nil {
		return fmt.Errorf("--type: %w", err)
	}
	rep, err := modelinit.Quantize(c.Args().Get(0), c.Args().Get(1), typ)
	if err != nil {
		return fmt.Errorf("model quantize: %w", err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s: %d tensors re-encoded as %s, %d kept; %.2f MiB -> %.2f MiB (file type %s)\n",
		rep.Out, rep.Converted, rep.Type, rep.Kept, float64(rep.BytesIn)/(1<<20), float64(rep.BytesOut)/(1<<20), gguf.FileType(rep.FileType))
	for _, fb := range rep.Fallbacks {
		fmt.Fprintf(w, "  fallback %s\n", fb)
	}
	return nil
}
