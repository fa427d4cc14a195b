package augment

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"text/template"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// Prompt is what a prompt template sees (Go text/template syntax):
//
//	{{.Mode}}      "paraphrase" or "queries"
//	{{.Input}}     the query to paraphrase, or the document's text (cut to MaxDocWords words)
//	{{.Title}}     the document's title ("" in mode paraphrase)
//	{{.Examples}}  few-shot training pairs of the dataset, each {{.Query}} and {{.Document}}
//	               (the document cut to 60 words); none when train has no pairs
type Prompt struct {
	Mode     string
	Input    string
	Title    string
	Examples []Shot
}

// Shot is one few-shot example: a real training query and its positive.
type Shot struct{ Query, Document string }

// DefaultSystem is the system message of the default prompts.
const DefaultSystem = "You write search queries for a document collection. Answer with one query on one line and nothing else."

// DefaultPrompts are the user messages per mode.
var DefaultPrompts = map[string]string{
	dataset.ModeParaphrase: `Rewrite this search query in other words, keeping its meaning.
{{- if .Examples}}
Other queries of the same collection, for their style:
{{- range .Examples}}
- {{.Query}}
{{- end}}
{{- end}}
Query: {{.Input}}`,
	dataset.ModeQueries: `Write a search query that the document answers.
{{- range .Examples}}

Document: {{.Document}}
Query: {{.Query}}
{{- end}}

Document: {{if .Title}}{{.Title}}. {{end}}{{.Input}}
Query:`,
}

const shotWords = 60

func parsePrompt(o Options) (*template.Template, error) {
	text := o.Prompt
	if text == "" {
		text = DefaultPrompts[o.Mode]
	}
	t, err := template.New("prompt").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("prompt template: %w", err)
	}
	return t, nil
}

// examplePool is the dataset's real training pairs.
func examplePool(d *dataset.Dataset) []dataset.Example {
	pairs, err := d.Pairs(dataset.Train)
	if err != nil {
		return nil // no train split: prompts go without examples
	}
	gen := d.GeneratedQueries()
	var out []dataset.Example
	for _, p := range pairs {
		if !gen[p.QueryID] {
			out = append(out, p)
		}
	}
	return out
}

// renderPrompt fills the template for one item, with few-shot examples
// drawn (seeded by the run's seed and the item) from pairs that are not
// about the item itself.
func renderPrompt(t *template.Template, o Options, it item, pool []dataset.Example) (string, error) {
	p := Prompt{Mode: o.Mode, Input: cutWords(it.input, o.MaxDocWords), Title: it.title}
	if o.Mode == dataset.ModeParaphrase {
		p.Input = it.input
	}
	if n := min(o.FewShot, len(pool)); n > 0 {
		rng := rand.New(rand.NewPCG(o.Seed, uint64(requestSeed(o.Seed, it.parent, -1))))
		used := map[int]bool{}
		for tries := 0; len(p.Examples) < n && tries < 8*n; tries++ {
			i := rng.IntN(len(pool))
			e := pool[i]
			if used[i] || e.QueryID == it.parent || e.PositiveID == it.parent {
				continue
			}
			used[i] = true
			p.Examples = append(p.Examples, Shot{Query: e.Anchor, Document: cutWords(e.Positive, shotWords)})
		}
	}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		return "", fmt.Errorf("prompt template: %w", err)
	}
	return b.String(), nil
}

func cutWords(s string, n int) string {
	w := strings.Fields(s)
	if len(w) <= n {
		return strings.Join(w, " ")
	}
	return strings.Join(w[:n], " ") + " …"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
