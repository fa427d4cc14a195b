package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/tune/augment"
	"github.com/ragtune/ragtune/tune/encoder"
)

// augmentJournal is the resume journal's name inside the output folder.
const augmentJournal = "augment-journal.jsonl"

// dataAugmentCommand is `data augment` (added to the data group in data.go).
func dataAugmentCommand(dataFlag, outFlag, jsonFlag, seedFlag ucli.Flag) *ucli.Command {
	s := bindings.DefaultSampling
	return &ucli.Command{
		Name:      "augment",
		Usage:     "add generated training queries (paraphrases, or queries for documents) written by a local chat GGUF",
		ArgsUsage: "[DATASET_DIR]",
		Description: "--mode paraphrase: --num paraphrases of each train query, judged like it.\n" +
			"--mode queries: --num queries for each document (or --sample N of them, or --only-unjudged),\n" +
			"kept when BM25 (or --filter-model) ranks the document in the top --filter-k.\n" +
			"Documents judged in validation or test are never written for. Generated queries are marked\n" +
			"(source generated, generator, seed) and go to train only. A crashed run resumes from\n" +
			"OUT/" + augmentJournal + " (run the same command again).\n" +
			"--prompt FILE is a Go text/template for the user message with {{.Mode}}, {{.Input}} (the query,\n" +
			"or the document cut to --max-doc-words), {{.Title}} and {{range .Examples}}{{.Query}} {{.Document}}{{end}}\n" +
			"(few-shot training pairs of the dataset).",
		Flags: []ucli.Flag{dataFlag, outFlag,
			&ucli.StringFlag{Name: "generator", Usage: "chat model GGUF (llama, qwen, mistral, gemma, ...) that writes the queries", Required: true},
			&ucli.StringFlag{Name: "mode", Usage: "paraphrase|queries", Required: true},
			&ucli.IntFlag{Name: "num", Value: 2, Usage: "paraphrases per query, or queries per document"},
			&ucli.IntFlag{Name: "sample", Usage: "queries mode: a seeded sample of this many documents (0: all)"},
			&ucli.BoolFlag{Name: "only-unjudged", Usage: "queries mode: only documents no query judges relevant"},
			&ucli.StringFlag{Name: "prompt", Usage: "prompt template file (text/template; see the description)"},
			&ucli.StringFlag{Name: "system", Value: augment.DefaultSystem, Usage: "system message (\"\" for none)"},
			&ucli.StringFlag{Name: "chat-template", Usage: "one of llama.cpp's built-in chat templates (chatml, llama3, mistral-v7, gemma, ...) instead of the model's"},
			&ucli.IntFlag{Name: "few-shot", Value: 3, Usage: "training pairs shown in each prompt"},
			&ucli.IntFlag{Name: "max-doc-words", Value: 256, Usage: "document text in a prompt is cut to this many words"},
			&ucli.IntFlag{Name: "max-tokens", Value: 48, Usage: "reply budget in tokens"},
			&ucli.IntFlag{Name: "max-words", Value: 32, Usage: "replies longer than this many words are dropped"},
			&ucli.Float64Flag{Name: "temperature", Value: float64(s.Temperature), Usage: "sampling temperature (0: greedy)"},
			&ucli.IntFlag{Name: "top-k", Value: s.TopK, Usage: "sample among the k most likely tokens (0: off)"},
			&ucli.Float64Flag{Name: "top-p", Value: float64(s.TopP), Usage: "nucleus sampling (1: off)"},
			&ucli.Float64Flag{Name: "min-p", Value: float64(s.MinP), Usage: "drop tokens below this fraction of the best one's probability (0: off)"},
			&ucli.Float64Flag{Name: "repeat-penalty", Value: 1.1, Usage: "repetition penalty (1: off)"},
			&ucli.IntFlag{Name: "repeat-last-n", Value: s.RepeatLastN, Usage: "tokens the repetition penalty looks back over"},
			&ucli.IntFlag{Name: "filter-k", Value: 10, Usage: "queries mode: keep a query when its document ranks in this top k (0: no consistency filter)"},
			&ucli.StringFlag{Name: "filter-model", Usage: "embedding GGUF for the consistency filter (default: BM25)"},
			&ucli.IntFlag{Name: "batch", Value: 8, Usage: "prompts generated together"},
			&ucli.IntFlag{Name: "ctx", Value: 2048, Usage: "context per prompt in tokens (prompt and reply; at most the model's)"},
			&ucli.IntFlag{Name: "threads", Value: defaultThreads(), Usage: "CPU threads"},
			deviceFlag(),
			seedFlag, jsonFlag,
		},
		Action: runDataAugment,
	}
}

func runDataAugment(c *ucli.Context) error {
	in, err := dataDir(c)
	if err != nil {
		return err
	}
	out := c.String("out")
	if filepath.Clean(absPath(in)) == filepath.Clean(absPath(out)) {
		return fmt.Errorf("--out %s is the input dataset: augment writes a new folder (a resumed run reads the input again)", out)
	}
	d, err := dataset.Open(in)
	if err != nil {
		return err
	}
	genPath := c.String("generator")
	if err := checkGenerator(genPath); err != nil {
		return err
	}
	dev, err := selectDevice(c)
	if err != nil {
		return err
	}
	m, err := bindings.LoadGeneratorModel(genPath, dev)
	if err != nil {
		return err
	}
	defer m.Close()
	o := augment.Options{
		Mode: c.String("mode"), Generator: genPath, ChatTemplate: m.ChatTemplate(), System: c.String("system"),
		PerItem: c.Int("num"), Sample: c.Int("sample"), OnlyUnjudged: c.Bool("only-unjudged"),
		FewShot: c.Int("few-shot"), MaxDocWords: c.Int("max-doc-words"), Seed: c.Uint64("seed"),
		Sampling: bindings.Sampling{Temperature: float32(c.Float64("temperature")), TopK: c.Int("top-k"), TopP: float32(c.Float64("top-p")),
			MinP: float32(c.Float64("min-p")), RepeatPenalty: float32(c.Float64("repeat-penalty")), RepeatLastN: c.Int("repeat-last-n")},
		MaxTokens: c.Int("max-tokens"), MaxWords: c.Int("max-words"), Batch: c.Int("batch"),
		Journal: filepath.Join(out, augmentJournal),
	}
	if t := c.String("chat-template"); t != "" {
		if !slices.Contains(bindings.BuiltinChatTemplates(), t) {
			return fmt.Errorf("--chat-template %q: not one of llama.cpp's built-in templates %v", t, bindings.BuiltinChatTemplates())
		}
		o.ChatTemplate = t
	}
	if o.ChatTemplate == "" {
		return fmt.Errorf("%s has no chat template (tokenizer.chat_template): name one with --chat-template (%v)", genPath, bindings.BuiltinChatTemplates())
	}
	if p := c.String("prompt"); p != "" {
		raw, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("--prompt: %w", err)
		}
		o.Prompt = string(raw)
	}
	if o.Mode == dataset.ModeQueries && c.Int("filter-k") > 0 {
		o.TopK = c.Int("filter-k")
		closer, err := consistencyRanker(c, d, &o)
		if err != nil {
			return err
		}
		if closer != nil {
			defer closer()
		}
	}
	g, err := m.NewGenerator(bindings.GeneratorOptions{NSeqMax: o.Batch, NCtx: min(c.Int("ctx"), m.NCtxTrain()), Threads: c.Int("threads")})
	if err != nil {
		return err
	}
	defer g.Close()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	prog := newProgress("augment", 0, c.Bool("json"))
	o.Progress = func(p augment.Progress) {
		prog.total = p.Total
		prog.Update(p.Done, fmt.Sprintf("%.0f tok/s", p.TokensPerSecond))
	}
	// Ctrl-C or SIGTERM stops between decode steps; finished batches stay in the journal.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, rep, err := augment.Run(ctx, d, g, o)
	prog.Done()
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: finished batches are in %s; run the same command again to resume", o.Journal)
	}
	if err != nil {
		return err
	}
	if err := res.Save(out); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, struct {
			Out string `json:"out"`
			*augment.Report
			Splits map[string]dataset.SplitCount `json:"splits"`
		}{out, rep, res.Manifest().Splits})
	}
	w := c.App.Writer
	what := "queries"
	if o.Mode == dataset.ModeQueries {
		what = "documents"
	}
	fmt.Fprintf(w, "augment (%s) with %s: %d %s, %d replies (%d read back from the journal), %d generated queries added to train\n",
		o.Mode, rep.Generator, rep.Items, what, rep.Requests, rep.Resumed, rep.Kept)
	if rep.HeldOut > 0 {
		fmt.Fprintf(w, "%d documents judged in validation or test were not written for\n", rep.HeldOut)
	}
	fmt.Fprint(w, "filtered:")
	for _, f := range []string{augment.FilterPrompt, augment.FilterEmpty, augment.FilterTooLong, augment.FilterCopy, augment.FilterInconsistent, augment.FilterDuplicate} {
		fmt.Fprintf(w, " %s %d;", f, rep.Filtered[f])
	}
	fmt.Fprintf(w, "\ngenerated %d tokens in %.1f s (%.1f tokens/s)\n", rep.Tokens, rep.Seconds, rep.TokPerSec)
	printSplitCounts(w, res)
	return nil
}

// checkGenerator reads the GGUF in Go before llama.cpp does (llama.cpp
// aborts on some malformed files); llama and bert files get the full check.
func checkGenerator(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return fmt.Errorf("--generator: %w", err)
	}
	defer f.Close()
	arch, _, _ := f.String("general.architecture")
	if slices.Contains(gguf.SupportedArchs, arch) {
		if _, err := gguf.ValidateModel(f, ""); err != nil {
			return fmt.Errorf("--generator: %w", err)
		}
	}
	return nil
}

// consistencyRanker sets o.Ranker: BM25 over the corpus, or --filter-model's
// embeddings; the returned function frees the model.
func consistencyRanker(c *ucli.Context, d *dataset.Dataset, o *augment.Options) (func(), error) {
	if p := c.String("filter-model"); p != "" {
		enc, err := encoder.Open(p, encoder.Options{Threads: c.Int("threads"), Normalize: true})
		if err != nil {
			return nil, fmt.Errorf("--filter-model: %w", err)
		}
		r, err := augment.EmbeddingRanker(c.Context, enc, d)
		if err != nil {
			enc.Close()
			return nil, err
		}
		o.Ranker = r
		return enc.Close, nil
	}
	r, err := d.BM25Ranker()
	o.Ranker = r
	return nil, err
}
