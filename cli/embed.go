package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"
	"unicode/utf8"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/retrieval"
	"github.com/ragtune/ragtune/tune/encoder"
)

// modelFlags are shared by every command that embeds with a model.
func modelFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "model", Usage: "GGUF embedding model (bert or llama family)"},
		&ucli.StringFlag{Name: "adapter", Usage: "LoRA adapter GGUF applied without merging"},
		&ucli.Float64Flag{Name: "adapter-scale", Value: 1, Usage: "user scale of the adapter (llama.cpp's --lora-scaled)"},
		&ucli.StringFlag{Name: "engine", Value: encoder.EngineGGML, Usage: "ggml (ragtune's graph) or llama.cpp"},
		&ucli.IntFlag{Name: "threads", Value: defaultThreads(), Usage: "CPU threads"},
		&ucli.IntFlag{Name: "batch", Value: 16, Usage: "texts per forward pass"},
		&ucli.IntFlag{Name: "max-tokens", Usage: "cut texts longer than this many tokens (default: the model's context)"},
		&ucli.BoolFlag{Name: "normalize", Usage: "L2-normalise the embeddings"},
		&ucli.StringFlag{Name: "query-instruction", Usage: "prefix for query texts (e5-mistral: \"Instruct: <task>\\nQuery: \")"},
		deviceFlag(),
	}
}

func defaultThreads() int { return min(runtime.NumCPU(), 8) }

// openEmbedder opens the model named by --model with the shared model flags.
func openEmbedder(c *ucli.Context) (*encoder.Encoder, error) {
	path := c.String("model")
	if path == "" {
		return nil, fmt.Errorf("--model is required")
	}
	opts := encoderOptions(c)
	d, err := selectDevice(c)
	if err != nil {
		return nil, err
	}
	opts.Device = d.Spec()
	return encoder.Open(path, opts)
}

func encoderOptions(c *ucli.Context) encoder.Options {
	return encoder.Options{
		Engine:           c.String("engine"),
		Device:           c.String("device"),
		Threads:          c.Int("threads"),
		Batch:            c.Int("batch"),
		MaxTokens:        c.Int("max-tokens"),
		Normalize:        c.Bool("normalize"),
		QueryInstruction: c.String("query-instruction"),
		Adapter:          c.String("adapter"),
		AdapterScale:     float32(c.Float64("adapter-scale")),
	}
}

func init() {
	register(&ucli.Command{
		Name:      "embed",
		Usage:     "embed texts (JSONL with \"text\") with a GGUF model",
		ArgsUsage: " ",
		Flags: append(modelFlags(),
			&ucli.StringFlag{Name: "in", Required: true, Usage: "input JSONL: {\"text\": ..., \"_id\"?: ...} per line"},
			&ucli.StringFlag{Name: "out", Required: true, Usage: "output JSONL: {\"_id\"?, \"i\", \"n_tokens\", \"embedding\"}"},
			&ucli.BoolFlag{Name: "queries", Usage: "the texts are queries (adds --query-instruction)"},
			&ucli.BoolFlag{Name: "json", Usage: "print a JSON summary"},
			&ucli.BoolFlag{Name: "quiet", Usage: "no progress line"},
		),
		Action: runEmbed,
	})
}

type embedInput struct {
	ID   *json.RawMessage `json:"_id,omitempty"`
	Text *string          `json:"text"`
}

type embedSummary struct {
	Texts        int     `json:"texts"`
	Tokens       int     `json:"tokens"`
	Truncated    int     `json:"truncated"`
	Seconds      float64 `json:"seconds"`
	TextsPerSec  float64 `json:"texts_per_s"`
	TokensPerSec float64 `json:"tokens_per_s"`
	Engine       string  `json:"engine"`
	Dim          int     `json:"dim"`
	Out          string  `json:"out"`
	bindings.Usage
}

func readEmbedInput(path string) ([]embedInput, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []embedInput
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("%s:%d: invalid UTF-8 (convert the file first, e.g. with ragtune data import --encoding latin1)", path, line)
		}
		var in embedInput
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if in.Text == nil {
			return nil, fmt.Errorf("%s:%d: missing field \"text\"", path, line)
		}
		out = append(out, in)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func runEmbed(c *ucli.Context) error {
	inputs, err := readEmbedInput(c.String("in"))
	if err != nil {
		return err
	}
	enc, err := openEmbedder(c)
	if err != nil {
		return err
	}
	defer enc.Close()
	kind := retrieval.Document
	if c.Bool("queries") {
		kind = retrieval.Query
	}
	start := time.Now()
	bar := newProgress("embed", len(inputs), c.Bool("quiet") || c.Bool("json"))
	vecs := make([][]float32, len(inputs))
	nTokens := make([]int, len(inputs))
	chunk := max(c.Int("batch"), 1) * 8
	for lo := 0; lo < len(inputs); lo += chunk {
		hi := min(lo+chunk, len(inputs))
		texts := make([]string, 0, hi-lo)
		for _, in := range inputs[lo:hi] {
			texts = append(texts, *in.Text)
		}
		seqs, err := enc.Tokenize(texts, kind)
		if err != nil {
			return fmt.Errorf("%s: lines %d-%d: %w", c.String("in"), lo+1, hi, err)
		}
		out, err := enc.EmbedTokens(context.Background(), seqs, kind)
		if err != nil {
			return fmt.Errorf("embedding lines %d-%d: %w", lo+1, hi, err)
		}
		copy(vecs[lo:], out)
		for i, s := range seqs {
			nTokens[lo+i] = len(s)
		}
		rate := float64(enc.Stats().Tokens) / time.Since(start).Seconds()
		bar.Update(hi, fmt.Sprintf("%.0f tok/s", rate))
	}
	bar.Done()
	elapsed := time.Since(start).Seconds()
	err = safefile.Write(c.String("out"), func(w io.Writer) error {
		for i, in := range inputs {
			if err := writeEmbedLine(w, in.ID, i, nTokens[i], vecs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	st := enc.Stats()
	sum := embedSummary{
		Texts: st.Texts, Tokens: st.Tokens, Truncated: st.Truncated, Seconds: elapsed,
		TextsPerSec: float64(st.Texts) / elapsed, TokensPerSec: float64(st.Tokens) / elapsed,
		Engine: c.String("engine"), Dim: enc.Dim(), Out: c.String("out"), Usage: enc.Usage(),
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, sum)
	}
	fmt.Fprintf(c.App.Writer, "embedded %d texts (%d tokens, %d truncated) in %.2fs: %.1f texts/s, %.0f tokens/s -> %s\n",
		sum.Texts, sum.Tokens, sum.Truncated, elapsed, sum.TextsPerSec, sum.TokensPerSec, sum.Out)
	fmt.Fprintln(c.App.Writer, sum.Usage.Summary())
	return nil
}

func writeEmbedLine(w io.Writer, id *json.RawMessage, i, n int, v []float32) error {
	buf := make([]byte, 0, 64+len(v)*12)
	buf = append(buf, '{')
	if id != nil {
		buf = append(buf, `"_id":`...)
		buf = append(buf, *id...)
		buf = append(buf, ',')
	}
	buf = append(buf, `"i":`...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, `,"n_tokens":`...)
	buf = strconv.AppendInt(buf, int64(n), 10)
	buf = append(buf, `,"embedding":[`...)
	for j, x := range v {
		if j > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendFloat(buf, float64(x), 'g', -1, 32)
	}
	buf = append(buf, "]}\n"...)
	_, err := w.Write(buf)
	return err
}
