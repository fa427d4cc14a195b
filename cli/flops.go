package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/retrieval/flops"
)

func init() {
	register(&ucli.Command{
		Name:      "flops",
		Usage:     "estimate forward, full fine-tuning and LoRA FLOPs of a model",
		ArgsUsage: " ",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "model", Usage: "GGUF model (bert, llama, qwen3, nomic-bert or gemma-embedding); or give the sizes below"},
			&ucli.IntFlag{Name: "rank", Usage: "LoRA rank (0: no LoRA term)"},
			&ucli.Float64Flag{Name: "tokens", Required: true, Usage: "training tokens (examples x epochs x tokens per example)"},
			&ucli.IntFlag{Name: "seq", Value: 256, Usage: "sequence length, for the attention term"},
			&ucli.StringFlag{Name: "arch", Value: "bert", Usage: "without --model: bert, llama, qwen3, nomic-bert or gemma-embedding"},
			&ucli.IntFlag{Name: "head-dim", Usage: "without --model: head size when it is not dim/heads (qwen3, gemma-embedding)"},
			&ucli.IntFlag{Name: "layers", Usage: "without --model: transformer blocks"},
			&ucli.IntFlag{Name: "dim", Usage: "without --model: hidden size"},
			&ucli.IntFlag{Name: "ff", Usage: "without --model: feed-forward size"},
			&ucli.IntFlag{Name: "heads", Usage: "without --model: attention heads"},
			&ucli.IntFlag{Name: "kv-heads", Usage: "without --model: key/value heads (default: heads)"},
			&ucli.IntFlag{Name: "vocab", Usage: "without --model: vocabulary size (parameters only)"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: runFlops,
	})
}

func runFlops(c *ucli.Context) error {
	var arch flops.Arch
	var err error
	if p := c.String("model"); p != "" {
		for _, f := range []string{"layers", "dim", "ff", "heads", "kv-heads", "vocab", "head-dim"} {
			if c.IsSet(f) {
				return fmt.Errorf("flops: --%s comes from the model; leave it out with --model", f)
			}
		}
		arch, err = flops.FromGGUF(p)
	} else {
		if !c.IsSet("layers") || !c.IsSet("dim") || !c.IsSet("ff") || !c.IsSet("heads") {
			return errors.New("flops: give --model M.gguf, or --layers, --dim, --ff and --heads")
		}
		arch, err = flops.Uniform(c.String("arch"), c.Int("layers"), c.Int("dim"), c.Int("heads"), c.Int("kv-heads"), c.Int("ff"), c.Int("vocab"))
		if err == nil && c.IsSet("head-dim") {
			arch, err = arch.WithHeadDim(c.Int("head-dim"))
		}
	}
	if err != nil {
		return err
	}
	est, err := arch.Estimate(c.Float64("tokens"), c.Int("seq"), c.Int("rank"))
	if err != nil {
		return fmt.Errorf("flops: %w", err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, est)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s, %d layers, dim %d, heads %d/%d (q/kv)\n", arch.Name, est.Layers, arch.Dim, arch.Layers[0].Heads, arch.Layers[0].KVHeads)
	fmt.Fprintf(tw, "parameters\t%.4g in matrices + %.4g in embeddings\n", est.ParamsMatrices, est.ParamsEmbeddings)
	fmt.Fprintf(tw, "per token, seq %d:\t\n", est.Seq)
	fmt.Fprintf(tw, "  attention projections\t%.4g\n", est.PerToken.AttnProj)
	fmt.Fprintf(tw, "  attention scores\t%.4g\n", est.PerToken.AttnScores)
	fmt.Fprintf(tw, "  feed-forward\t%.4g\n", est.PerToken.FFN)
	fmt.Fprintf(tw, "  forward\t%.4g\n", est.PerToken.Forward)
	fmt.Fprintf(tw, "forward x %.4g tokens\t%.4g\n", est.Tokens, est.Forward)
	fmt.Fprintf(tw, "full fine-tuning (3 x forward)\t%.4g\n", est.FullFT)
	if est.LoRARank > 0 {
		fmt.Fprintf(tw, "LoRA factor (2/3 + 2r/N), r=%d N=%d\t%.4f\n", est.LoRARank, arch.Dim, est.LoRAFactor)
		fmt.Fprintf(tw, "LoRA (factor x full)\t%.4g\n", est.LoRA)
	}
	return tw.Flush()
}
