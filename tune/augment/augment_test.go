package augment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/tune/modelinit"
)

const chatML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

var docTexts = []string{
	"python module for parsing command line arguments",
	"image conversion tools that resize and convert pictures",
	"network time protocol daemon keeps the clock in sync",
	"fonts with wide coverage of scripts and symbols",
	"daemon that watches files and runs commands on change",
	"library for reading and writing compressed archives",
	"text editor with syntax highlighting for many languages",
	"tools to inspect and debug running processes",
	"spell checker dictionaries for english and german",
	"web server serving static files over http",
}

// toyData: ten documents; q0..q3 train, q4..q5 validation, q6..q7 test,
// each query judging the document of the same number; d8, d9 unjudged.
func toyData() *dataset.Dataset {
	d := &dataset.Dataset{Qrels: map[string][]dataset.Qrel{}, Examples: map[string][]dataset.Example{}}
	for i, text := range docTexts {
		d.Corpus = append(d.Corpus, dataset.Doc{ID: fmt.Sprintf("d%d", i), Text: text})
	}
	for i := range 8 {
		split := dataset.Train
		if i >= 6 {
			split = dataset.Test
		} else if i >= 4 {
			split = dataset.Validation
		}
		id := fmt.Sprintf("q%d", i)
		d.Queries = append(d.Queries, dataset.Query{ID: id, Text: strings.Join(strings.Fields(docTexts[i])[:3], " ")})
		d.Qrels[split] = append(d.Qrels[split], dataset.Qrel{QueryID: id, DocID: fmt.Sprintf("d%d", i), Score: 1})
	}
	return d
}

var genOnce struct {
	path string
	err  error
}

// tinyGenerator is a random llama chat model: its replies are noise.
func tinyGenerator(t testing.TB) string {
	t.Helper()
	if genOnce.path == "" && genOnce.err == nil {
		dir, err := os.MkdirTemp("", "augment-gen")
		if err == nil {
			genOnce.path = filepath.Join(dir, "tiny-chat.gguf")
			_, err = modelinit.Write(genOnce.path, modelinit.Options{Arch: "llama", Texts: docTexts, Vocab: 400, Ctx: 512, Seed: 3, ChatTemplate: chatML})
		}
		genOnce.err = err
	}
	if genOnce.err != nil {
		t.Fatal(genOnce.err)
	}
	return genOnce.path
}

func openGenerator(t testing.TB, batch int) (*bindings.LlamaModel, *bindings.Generator) {
	t.Helper()
	m, err := bindings.LoadGeneratorModel(tinyGenerator(t), bindings.Device{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	g, err := m.NewGenerator(bindings.GeneratorOptions{NSeqMax: batch, NCtx: 512, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return m, g
}

func baseOptions(t *testing.T, m *bindings.LlamaModel, mode string) Options {
	return Options{Mode: mode, Generator: tinyGenerator(t), ChatTemplate: m.ChatTemplate(), System: DefaultSystem,
		PerItem: 2, FewShot: 2, MaxDocWords: 100, Seed: 5, Sampling: bindings.DefaultSampling,
		MaxTokens: 10, MaxWords: 32, Batch: 3, Journal: filepath.Join(t.TempDir(), "journal.jsonl")}
}

func bm25Ranker(t *testing.T, d *dataset.Dataset) dataset.Ranker {
	ids, texts := make([]string, len(d.Corpus)), make([]string, len(d.Corpus))
	for i, doc := range d.Corpus {
		ids[i], texts[i] = doc.ID, d.DocText(doc)
	}
	ix, err := bm25.Build(ids, texts, bm25.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	return rankerFunc(func(qs []string, k int) ([][]dataset.Hit, error) {
		res, err := ix.Search(qs, k)
		out := make([][]dataset.Hit, len(res))
		for i, hits := range res {
			for _, h := range hits {
				out[i] = append(out[i], dataset.Hit{DocID: h.ID, Score: float64(h.Score)})
			}
		}
		return out, err
	})
}

type rankerFunc func([]string, int) ([][]dataset.Hit, error)

func (f rankerFunc) Search(qs []string, k int) ([][]dataset.Hit, error) { return f(qs, k) }

// checkAugmented checks what every augmented dataset must be: the input's
// rows untouched, generated rows marked, in train only, counted.
func checkAugmented(t *testing.T, in, out *dataset.Dataset, rep *Report, o Options) {
	t.Helper()
	if !reflect.DeepEqual(out.Queries[:len(in.Queries)], in.Queries) || !reflect.DeepEqual(out.Corpus, in.Corpus) {
		t.Fatal("input queries or corpus changed")
	}
	for _, s := range []string{dataset.Validation, dataset.Test} {
		if !reflect.DeepEqual(out.Qrels[s], in.Qrels[s]) || len(out.Examples[s]) != len(in.Examples[s]) {
			t.Fatalf("split %s changed", s)
		}
	}
	added := out.Queries[len(in.Queries):]
	if len(added) != rep.Kept {
		t.Fatalf("%d queries added, report says %d kept", len(added), rep.Kept)
	}
	filtered := 0
	for _, n := range rep.Filtered {
		filtered += n
	}
	if rep.Kept+filtered != rep.Requests || rep.Requests != rep.Items*o.PerItem {
		t.Fatalf("report does not add up: %+v", rep)
	}
	judged := map[string]int{}
	for _, r := range out.Qrels[dataset.Train] {
		judged[r.QueryID]++
	}
	for _, q := range added {
		g := q.Generated
		if g == nil || g.Mode != o.Mode || g.Seed != o.Seed || g.Generator != "tiny-chat.gguf" || judged[q.ID] == 0 {
			t.Fatalf("generated query %+v (mark %+v) judged %d times in train", q, g, judged[q.ID])
		}
	}
	dir := t.TempDir()
	if err := out.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := dataset.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Queries, out.Queries) {
		t.Fatal("marks lost on disk")
	}
	if rel := back.Relevant(dataset.Test); !reflect.DeepEqual(rel, in.Relevant(dataset.Test)) {
		t.Fatalf("test judgements changed: %v", rel)
	}
}

func TestParaphrase(t *testing.T) {
	m, g := openGenerator(t, 3)
	in := toyData()
	o := baseOptions(t, m, dataset.ModeParaphrase)
	out, rep, err := Run(context.Background(), in, g, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
	if rep.Items != 4 || rep.Kept == 0 || rep.Tokens == 0 || rep.TokPerSec <= 0 {
		t.Fatalf("report %+v", rep)
	}
	checkAugmented(t, in, out, rep, o)
	rel := in.Relevant(dataset.Train)
	for _, q := range out.Queries[len(in.Queries):] {
		if got := out.Relevant(dataset.Train)[q.ID]; got != nil {
			t.Fatalf("evaluation sees generated query %s", q.ID)
		}
		var docs []string
		for _, r := range out.Qrels[dataset.Train] {
			if r.QueryID == q.ID {
				docs = append(docs, r.DocID)
			}
		}
		if want := sortedKeys(rel[q.Generated.Parent]); !reflect.DeepEqual(docs, want) {
			t.Fatalf("%s points at %v, its query %s at %v", q.ID, docs, q.Generated.Parent, want)
		}
	}
}

func TestQueriesModeChoosesDocuments(t *testing.T) {
	m, g := openGenerator(t, 4)
	in := toyData()
	for _, tc := range []struct {
		name         string
		sample       int
		onlyUnjudged bool
		items        int
	}{{"all", 0, false, 6}, {"unjudged", 0, true, 2}, {"sample", 3, false, 3}} {
		o := baseOptions(t, m, dataset.ModeQueries)
		o.PerItem, o.Sample, o.OnlyUnjudged = 1, tc.sample, tc.onlyUnjudged
		o.Ranker, o.TopK = bm25Ranker(t, in), 3
		out, rep, err := Run(context.Background(), in, g, o)
		if err != nil {
			t.Fatal(tc.name, err)
		}
		t.Logf("%s: %+v", tc.name, rep)
		// d4..d7 are judged in validation or test: never written for.
		if rep.Items != tc.items || rep.HeldOut != 4 {
			t.Fatalf("%s: %d items, %d held out", tc.name, rep.Items, rep.HeldOut)
		}
		checkAugmented(t, in, out, rep, o)
		for _, q := range out.Queries[len(in.Queries):] {
			if p := q.Generated.Parent; p >= "d4" && p <= "d7" || tc.onlyUnjudged && p < "d8" {
				t.Fatalf("%s: query written for %s", tc.name, p)
			}
		}
	}
}

// TestFilters runs the filters over chosen replies (the tiny generator's
// noise rarely trips them).
func TestFilters(t *testing.T) {
	in := toyData()
	o := Options{Mode: dataset.ModeQueries, PerItem: 1, MaxWords: 6, Seed: 1, Generator: "g.gguf", Ranker: bm25Ranker(t, in), TopK: 1}
	var items []item
	for i := 0; i < 9; i++ {
		items = append(items, item{parent: in.Corpus[i].ID, input: in.Corpus[i].Text, docs: map[string]int{in.Corpus[i].ID: 1}})
	}
	replies := []bindings.Reply{
		{Text: "  \n", Stop: bindings.StopEOG},                   // empty
		{Text: "one two three four five six seven", Stop: "eog"}, // too long
		{Text: "keeps the clock", Stop: "eog"},                   // a piece of d2
		{Text: "network time", Stop: bindings.StopPrompt},        // prompt did not fit
		{Text: "Query: \"daemon watching files\"", Stop: "stop"}, // kept, cleaned
		{Text: "compressed archives reader", Stop: "eog"},        // d5: kept
		{Text: "python arguments", Stop: "eog"},                  // d6: BM25 finds d0
		{Text: "DAEMON   watching files", Stop: "eog"},           // duplicate of reply 4 (BM25 puts d4 first)
		{Text: "python module for parsing", Stop: "eog"},         // equals q0's text
	}
	items[7] = item{parent: "d4", input: in.Corpus[4].Text, docs: map[string]int{"d4": 1}}
	items[8] = item{parent: "d0", input: "something else", docs: map[string]int{"d0": 1}}
	in.Queries[0].Text = "python module for parsing"
	rep := &Report{Filtered: map[string]int{}, Stops: map[string]int{}}
	out, err := assemble(in, o, items, replies, rep)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{FilterEmpty: 1, FilterTooLong: 1, FilterCopy: 1, FilterPrompt: 1, FilterInconsistent: 1, FilterDuplicate: 2}
	if !reflect.DeepEqual(rep.Filtered, want) || rep.Kept != 2 {
		t.Fatalf("filtered %v, kept %d", rep.Filtered, rep.Kept)
	}
	added := out.Queries[len(in.Queries):]
	if added[0].Text != "daemon watching files" || added[0].ID != "gen-queries-d4-0" || added[1].Text != "compressed archives reader" {
		t.Fatalf("kept %+v", added)
	}
}

func TestPromptTemplates(t *testing.T) {
	in := toyData()
	o := Options{Mode: dataset.ModeQueries, FewShot: 2, MaxDocWords: 3, Seed: 1}
	tmpl, err := parsePrompt(o)
	if err != nil {
		t.Fatal(err)
	}
	it := item{parent: "d9", input: docTexts[9], title: "httpd"}
	got, err := renderPrompt(tmpl, o, it, examplePool(in))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "Document: httpd. web server serving …\nQuery:") || strings.Count(got, "Document:") != 3 {
		t.Fatalf("prompt:\n%s", got)
	}
	again, _ := renderPrompt(tmpl, o, it, examplePool(in))
	if again != got {
		t.Fatal("few-shot examples are not seeded")
	}
	// An item never gets itself as an example.
	o.FewShot = 4
	for _, q := range in.SplitQueries(dataset.Train) {
		p, _ := renderPrompt(tmpl, o, item{parent: strings.Replace(q.ID, "q", "d", 1), input: "x"}, examplePool(in))
		if strings.Contains(p, "Query: "+q.Text+"\n") {
			t.Fatalf("the item's own pair is an example:\n%s", p)
		}
	}
	o.FewShot = 3
	o.Prompt = "Q for {{.Input}} ({{len .Examples}} shots, {{.Mode}})"
	tmpl, _ = parsePrompt(o)
	if got, _ := renderPrompt(tmpl, o, it, examplePool(in)); got != "Q for web server serving … (3 shots, queries)" {
		t.Fatalf("custom prompt: %q", got)
	}
	o.Prompt = "{{.Nope}}"
	tmpl, _ = parsePrompt(o)
	if _, err := renderPrompt(tmpl, o, it, nil); err == nil {
		t.Fatal("an unknown template variable was accepted")
	}
	o.Prompt = "{{.Input"
	if _, err := parsePrompt(o); err == nil {
		t.Fatal("a broken template was accepted")
	}
}

// TestResume stops a run after two batches (a cancelled context, as a
// crash would) and resumes it: the result equals an uninterrupted run's,
// and the finished batches are not generated again.
func TestResume(t *testing.T) {
	m, g := openGenerator(t, 3)
	in := toyData()
	whole := baseOptions(t, m, dataset.ModeQueries)
	want, wantRep, err := Run(context.Background(), in, g, whole)
	if err != nil {
		t.Fatal(err)
	}

	o := baseOptions(t, m, dataset.ModeQueries)
	ctx, cancel := context.WithCancel(context.Background())
	o.Progress = func(p Progress) {
		if p.Done >= 6 {
			cancel()
		}
	}
	if _, _, err := Run(ctx, in, g, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	// A crash in the middle of writing a line leaves half of it.
	f, err := os.OpenFile(o.Journal, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"batch":2,"replies":[{"te`)
	f.Close()
	o.Progress = nil
	got, rep, err := Run(context.Background(), in, g, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Resumed != 6 || rep.Tokens >= wantRep.Tokens {
		t.Fatalf("resumed %d replies, generated %d tokens (whole run %d)", rep.Resumed, rep.Tokens, wantRep.Tokens)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("resumed run differs from the uninterrupted one")
	}
	// The finished journal is reused as it is; other settings are refused.
	if _, rep, err = Run(context.Background(), in, g, o); err != nil || rep.Resumed != rep.Requests || rep.Tokens != 0 {
		t.Fatalf("rerun of a finished journal: %v, %+v", err, rep)
	}
	o.Seed++
	if _, _, err := Run(context.Background(), in, g, o); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Fatalf("journal of another seed: %v", err)
	}
}

// TestExamplesFollow: when train holds explicit examples (with negatives),
// a paraphrase gets its query's example with the anchor replaced, and a
// query for a document gets a plain example, so Pairs sees them.
func TestExamplesFollow(t *testing.T) {
	in := toyData()
	in.Examples[dataset.Train] = []dataset.Example{{QueryID: "q0", Anchor: in.Queries[0].Text, PositiveID: "d0", Positive: docTexts[0], NegativeIDs: []string{"d9"}, Negatives: []string{docTexts[9]}}}
	para := []item{{parent: "q0", input: in.Queries[0].Text, docs: map[string]int{"d0": 1}, source: &in.Examples[dataset.Train][0]}}
	rep := &Report{Filtered: map[string]int{}, Stops: map[string]int{}}
	out, err := assemble(in, Options{Mode: dataset.ModeParaphrase, PerItem: 1, MaxWords: 10, Generator: "g.gguf"}, para, []bindings.Reply{{Text: "argument parsing for python", Stop: "eog"}}, rep)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := out.Pairs(dataset.Train)
	if err != nil || len(pairs) != 2 {
		t.Fatalf("%d pairs: %v", len(pairs), err)
	}
	want := dataset.Example{QueryID: "gen-paraphrase-q0-0", Anchor: "argument parsing for python", PositiveID: "d0", Positive: docTexts[0], NegativeIDs: []string{"d9"}, Negatives: []string{docTexts[9]}}
	if !reflect.DeepEqual(pairs[1], want) {
		t.Fatalf("generated example %+v", pairs[1])
	}
	docs := []item{{parent: "d8", input: docTexts[8], docs: map[string]int{"d8": 1}}}
	out, err = assemble(in, Options{Mode: dataset.ModeQueries, PerItem: 1, MaxWords: 10, Generator: "g.gguf"}, docs, []bindings.Reply{{Text: "german spelling", Stop: "eog"}}, rep)
	if err != nil {
		t.Fatal(err)
	}
	if e := out.Examples[dataset.Train][1]; e.Anchor != "german spelling" || e.PositiveID != "d8" || e.Positive != docTexts[8] || len(e.Negatives) != 0 {
		t.Fatalf("generated example %+v", e)
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
}
