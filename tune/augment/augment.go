// Package augment enlarges a dataset's training split with text written by a
// local generator model (ragtune data augment): paraphrases of the training
// queries, or synthetic queries for the corpus' documents (the doc2query /
// InPars line of work). Every generated query is marked (dataset.Generation)
// and lands in train only; filters drop empty, over-long, copied,
// inconsistent and duplicate replies and count each. A journal in the output
// folder makes a crashed run resume without generating finished batches
// again.
package augment

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/retrieval/dataset"
)

// Generator answers prompts; *bindings.Generator is the one ragtune uses.
type Generator interface {
	Generate(ctx context.Context, s bindings.Sampling, reqs []bindings.Request) ([]bindings.Reply, bindings.GenerateStats, error)
}

// Options configure Run.
type Options struct {
	Mode string // dataset.ModeParaphrase or dataset.ModeQueries
	// Generator is the generator model's path: its file name marks the rows.
	Generator string
	// ChatTemplate formats prompts (the model's, or a built-in name).
	ChatTemplate string
	System       string // system message ("" for none)
	// Prompt is the user message template (text/template; see Prompt);
	// "" takes the mode's default.
	Prompt  string
	PerItem int // paraphrases per query or queries per document
	// Sample keeps a seeded sample of this many documents (mode queries; 0: all).
	Sample int
	// OnlyUnjudged keeps the documents no query judges relevant (mode queries).
	OnlyUnjudged bool
	FewShot      int // examples from the training pairs in each prompt
	MaxDocWords  int // document text in a prompt is cut to this many words
	Seed         uint64
	Sampling     bindings.Sampling
	MaxTokens    int // reply budget
	MaxWords     int // longer replies are dropped as over-long
	Batch        int // prompts decoded together (the generator's NSeqMax)
	// Ranker and TopK make the consistency filter of mode queries: a query
	// is kept only if the ranker puts its document in the top TopK
	// (TopK 0: no filter).
	Ranker dataset.Ranker
	TopK   int
	// Journal is the file finished batches are appended to; Run resumes from it.
	Journal  string
	Progress func(Progress)
}

// Progress is reported after each batch.
type Progress struct {
	Done, Total     int // requests
	Tokens          int // generated in this run
	TokensPerSecond float64
}

// Filter names, in the order they are applied.
const (
	FilterPrompt       = "prompt_too_long" // the prompt left no room in the context
	FilterEmpty        = "empty"
	FilterTooLong      = "too_long"
	FilterCopy         = "copy"         // the input again, or a verbatim piece of it
	FilterInconsistent = "inconsistent" // the ranker does not find its document in the top k
	FilterDuplicate    = "duplicate"    // an existing query, or an earlier reply
)

// Report says what Run did.
type Report struct {
	Mode      string         `json:"mode"`
	Generator string         `json:"generator"`
	Seed      uint64         `json:"seed"`
	Items     int            `json:"items"`    // queries or documents augmented
	HeldOut   int            `json:"held_out"` // documents skipped: relevant in validation or test
	Requests  int            `json:"requests"` // replies asked for
	Resumed   int            `json:"resumed"`  // of them, read back from the journal
	Kept      int            `json:"kept"`     // generated queries added to train
	Filtered  map[string]int `json:"filtered"` // replies dropped, by filter
	Stops     map[string]int `json:"stops"`    // replies by why generation stopped
	Tokens    int            `json:"tokens"`   // generated in this run
	Seconds   float64        `json:"seconds"`  // generating in this run
	TokPerSec float64        `json:"tokens_per_second"`
	Journal   string         `json:"journal"`
}

// item is one query to paraphrase or one document to write queries for.
type item struct {
	parent string         // query or document id
	input  string         // its text
	title  string         // the document's title (mode queries)
	docs   map[string]int // relevant documents and grades the replies point at
	source *dataset.Example
}

// Run generates, filters and returns the augmented dataset (d is not changed).
func Run(ctx context.Context, d *dataset.Dataset, gen Generator, o Options) (*dataset.Dataset, *Report, error) {
	if err := o.check(); err != nil {
		return nil, nil, err
	}
	tmpl, err := parsePrompt(o)
	if err != nil {
		return nil, nil, err
	}
	rep := &Report{Mode: o.Mode, Generator: filepath.Base(o.Generator), Seed: o.Seed, Filtered: map[string]int{}, Stops: map[string]int{}, Journal: o.Journal}
	items, err := collect(d, o, rep)
	if err != nil {
		return nil, nil, err
	}
	rep.Items = len(items)
	pool := examplePool(d)
	reqs := make([]bindings.Request, 0, len(items)*o.PerItem)
	for _, it := range items {
		user, err := renderPrompt(tmpl, o, it, pool)
		if err != nil {
			return nil, nil, err
		}
		var msgs []bindings.ChatMessage
		if o.System != "" {
			msgs = append(msgs, bindings.ChatMessage{Role: "system", Content: o.System})
		}
		prompt, err := bindings.ApplyChatTemplate(o.ChatTemplate, append(msgs, bindings.ChatMessage{Role: "user", Content: user}), true)
		if err != nil {
			return nil, nil, err
		}
		for j := range o.PerItem {
			reqs = append(reqs, bindings.Request{Prompt: prompt, Seed: requestSeed(o.Seed, it.parent, j), MaxTokens: o.MaxTokens, Stop: []string{"\n"}})
		}
	}
	rep.Requests = len(reqs)
	replies, err := generateAll(ctx, gen, o, reqs, rep)
	if err != nil {
		return nil, rep, err
	}
	out, err := assemble(d, o, items, replies, rep)
	return out, rep, err
}

func (o *Options) check() error {
	switch {
	case o.Mode != dataset.ModeParaphrase && o.Mode != dataset.ModeQueries:
		return fmt.Errorf("mode %q: want paraphrase or queries", o.Mode)
	case o.PerItem < 1:
		return fmt.Errorf("%d replies per item: want at least 1", o.PerItem)
	case o.Sample < 0 || o.FewShot < 0 || o.TopK < 0:
		return errors.New("sample, few-shot and top-k must be >= 0")
	case o.MaxTokens < 1 || o.MaxWords < 1 || o.MaxDocWords < 1 || o.Batch < 1:
		return errors.New("max tokens, max words, max document words and batch must be positive")
	case o.Journal == "":
		return errors.New("no journal file")
	case o.Mode == dataset.ModeParaphrase && (o.Sample > 0 || o.OnlyUnjudged):
		return errors.New("sample and only-unjudged choose documents: they apply to mode queries")
	case o.TopK > 0 && o.Ranker == nil:
		return errors.New("the consistency filter (top-k) needs a ranker")
	}
	return nil
}

// collect lists the items in dataset order.
func collect(d *dataset.Dataset, o Options, rep *Report) ([]item, error) {
	var items []item
	if o.Mode == dataset.ModeParaphrase {
		rel := d.Relevant(dataset.Train)
		firstExample := map[string]*dataset.Example{}
		for i, e := range d.Examples[dataset.Train] {
			if _, ok := firstExample[e.QueryID]; !ok {
				firstExample[e.QueryID] = &d.Examples[dataset.Train][i]
			}
		}
		for _, q := range d.Queries {
			if q.Generated != nil {
				continue
			}
			if docs := rel[q.ID]; len(docs) > 0 || firstExample[q.ID] != nil {
				items = append(items, item{parent: q.ID, input: q.Text, docs: docs, source: firstExample[q.ID]})
			}
		}
		if len(items) == 0 {
			return nil, errors.New("the train split has no judged queries to paraphrase (use --mode queries for a corpus without queries)")
		}
		return items, nil
	}
	heldOut, judged := map[string]bool{}, map[string]bool{}
	gen := d.GeneratedQueries()
	for _, s := range d.Splits() {
		for _, r := range d.Qrels[s] {
			if r.Score > 0 && !gen[r.QueryID] {
				judged[r.DocID] = true
				heldOut[r.DocID] = heldOut[r.DocID] || s != dataset.Train
			}
		}
		for _, e := range d.Examples[s] {
			if e.PositiveID != "" && !gen[e.QueryID] {
				judged[e.PositiveID] = true
				heldOut[e.PositiveID] = heldOut[e.PositiveID] || s != dataset.Train
			}
		}
	}
	for _, doc := range d.Corpus {
		switch {
		case heldOut[doc.ID]:
			rep.HeldOut++
		case o.OnlyUnjudged && judged[doc.ID]:
		default:
			items = append(items, item{parent: doc.ID, input: doc.Text, title: doc.Title, docs: map[string]int{doc.ID: 1}})
		}
	}
	if o.Sample > 0 && o.Sample < len(items) {
		rng := rand.New(rand.NewPCG(o.Seed, 0xa06))
		keep := rng.Perm(len(items))[:o.Sample]
		chosen := make([]bool, len(items))
		for _, i := range keep {
			chosen[i] = true
		}
		kept := items[:0]
		for i, it := range items {
			if chosen[i] {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		return nil, errors.New("no documents to write queries for (all are judged in validation or test, or excluded by --only-unjudged)")
	}
	return items, nil
}

// requestSeed gives each reply its own sampler seed, a function of the run's
// seed, the item and the reply's number only: a reply does not depend on
// what it was batched with, nor on whether the run was resumed.
func requestSeed(seed uint64, parent string, j int) uint32 {
	h := fnv.New64a()
	h.Write([]byte(parent))
	x := seed ^ h.Sum64() + uint64(j)*0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return uint32(x ^ x>>31)
}

// generateAll answers every request, in fixed batches of o.Batch, reading
// finished batches back from the journal and appending new ones to it.
func generateAll(ctx context.Context, gen Generator, o Options, reqs []bindings.Request, rep *Report) ([]bindings.Reply, error) {
	j, done, err := openJournal(o.Journal, fingerprint(o, reqs), o.Batch, len(reqs))
	if err != nil {
		return nil, err
	}
	defer j.Close()
	replies := done
	rep.Resumed = len(done)
	start := time.Now()
	var genTime time.Duration
	for lo := len(done); lo < len(reqs); lo += o.Batch {
		hi := min(lo+o.Batch, len(reqs))
		got, st, err := gen.Generate(ctx, o.Sampling, reqs[lo:hi])
		if err != nil {
			return nil, err
		}
		if err := j.append(lo/o.Batch, got); err != nil {
			return nil, err
		}
		replies = append(replies, got...)
		rep.Tokens += st.Tokens
		genTime += st.PromptTime + st.Time
		if o.Progress != nil {
			o.Progress(Progress{Done: hi, Total: len(reqs), Tokens: rep.Tokens, TokensPerSecond: float64(rep.Tokens) / time.Since(start).Seconds()})
		}
	}
	rep.Seconds = genTime.Seconds()
	if genTime > 0 {
		rep.TokPerSec = float64(rep.Tokens) / genTime.Seconds()
	}
	return replies, nil
}

// clean takes the first line of a reply without a leading "Query:" label,
// surrounding quotes or replacement characters (bytes that were not UTF-8).
func clean(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\uFFFD", ""))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) >= 6 && strings.EqualFold(s[:6], "query:") {
		s = strings.TrimSpace(s[6:])
	}
	return strings.TrimSpace(strings.Trim(s, "\"'`“”"))
}

// isCopy: the reply is its input again, or a verbatim piece of it of three
// words or more.
func isCopy(reply, input string) bool {
	r, in := dataset.NormalizeText(reply), dataset.NormalizeText(input)
	return r == in || len(strings.Fields(r)) >= 3 && strings.Contains(" "+in+" ", " "+r+" ")
}

// assemble filters the replies and adds the survivors to train.
func assemble(d *dataset.Dataset, o Options, items []item, replies []bindings.Reply, rep *Report) (*dataset.Dataset, error) {
	type cand struct {
		it   *item
		j    int
		text string
	}
	var cands []cand
	for k, r := range replies {
		it := &items[k/o.PerItem]
		rep.Stops[r.Stop]++
		text := clean(r.Text)
		switch {
		case r.Stop == bindings.StopPrompt:
			rep.Filtered[FilterPrompt]++
		case text == "":
			rep.Filtered[FilterEmpty]++
		case len(strings.Fields(text)) > o.MaxWords:
			rep.Filtered[FilterTooLong]++
		case isCopy(text, it.input):
			rep.Filtered[FilterCopy]++
		default:
			cands = append(cands, cand{it, k % o.PerItem, text})
		}
	}
	if o.Mode == dataset.ModeQueries && o.TopK > 0 && len(cands) > 0 {
		texts := make([]string, len(cands))
		for i, c := range cands {
			texts[i] = c.text
		}
		hits, err := o.Ranker.Search(texts, o.TopK)
		if err != nil {
			return nil, fmt.Errorf("consistency filter: %w", err)
		}
		kept := cands[:0]
		for i, c := range cands {
			found := false
			for _, h := range hits[i] {
				found = found || h.DocID == c.it.parent
			}
			if found {
				kept = append(kept, c)
			} else {
				rep.Filtered[FilterInconsistent]++
			}
		}
		cands = kept
	}
	seen := map[string]bool{}
	ids := map[string]bool{}
	for _, q := range d.Queries {
		seen[dataset.NormalizeText(q.Text)] = true
		ids[q.ID] = true
	}
	out := &dataset.Dataset{Corpus: d.Corpus, Source: d.Source, Queries: append([]dataset.Query(nil), d.Queries...),
		Qrels: map[string][]dataset.Qrel{}, Examples: map[string][]dataset.Example{}}
	for s, rs := range d.Qrels {
		out.Qrels[s] = append([]dataset.Qrel(nil), rs...)
	}
	for s, es := range d.Examples {
		out.Examples[s] = append([]dataset.Example(nil), es...)
	}
	docs := d.DocIndex()
	withExamples := len(d.Examples[dataset.Train]) > 0
	gen := filepath.Base(o.Generator)
	for _, c := range cands {
		key := dataset.NormalizeText(c.text)
		if seen[key] {
			rep.Filtered[FilterDuplicate]++
			continue
		}
		seen[key] = true
		id := fmt.Sprintf("gen-%s-%s-%d", o.Mode, c.it.parent, c.j)
		for n := 2; ids[id]; n++ {
			id = fmt.Sprintf("gen-%s-%s-%d~%d", o.Mode, c.it.parent, c.j, n)
		}
		ids[id] = true
		out.Queries = append(out.Queries, dataset.Query{ID: id, Text: c.text,
			Generated: &dataset.Generation{Generator: gen, Seed: o.Seed, Mode: o.Mode, Parent: c.it.parent}})
		for _, doc := range sortedKeys(c.it.docs) {
			out.Qrels[dataset.Train] = append(out.Qrels[dataset.Train], dataset.Qrel{QueryID: id, DocID: doc, Score: c.it.docs[doc]})
		}
		if withExamples {
			e := dataset.Example{QueryID: id, Anchor: c.text}
			if c.it.source != nil {
				e.PositiveID, e.Positive = c.it.source.PositiveID, c.it.source.Positive
				e.NegativeIDs, e.Negatives = c.it.source.NegativeIDs, c.it.source.Negatives
			} else {
				first := sortedKeys(c.it.docs)[0]
				e.PositiveID, e.Positive = first, d.DocText(d.Corpus[docs[first]])
			}
			out.Examples[dataset.Train] = append(out.Examples[dataset.Train], e)
		}
		rep.Kept++
	}
	return out, nil
}
