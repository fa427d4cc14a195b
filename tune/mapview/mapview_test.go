package mapview

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/embmap"
	"github.com/ragtune/ragtune/retrieval/evaluate"
	"github.com/ragtune/ragtune/tune/report"
)

// corpus makes nq queries, each judging two of nd documents relevant
// (documents 2i and 2i+1), plus a query whose relevant document is not in
// the corpus and one judged with grade 0 only.
func corpus(nq, nd int) ([]evaluate.Query, evaluate.Qrels, []evaluate.Doc) {
	var qs []evaluate.Query
	qrels := evaluate.Qrels{}
	var docs []evaluate.Doc
	for i := range nd {
		docs = append(docs, evaluate.Doc{ID: fmt.Sprintf("d%03d", i), Title: "t", Text: fmt.Sprintf("document %d", i)})
	}
	for i := range nq {
		id := fmt.Sprintf("q%02d", i)
		qs = append(qs, evaluate.Query{ID: id, Text: "query " + id})
		qrels[id] = map[string]int{docs[2*i].ID: 1, docs[2*i+1].ID: 2, docs[nd-1].ID: 0}
	}
	qs = append(qs, evaluate.Query{ID: "qmissing", Text: "x"}, evaluate.Query{ID: "qzero", Text: "y"})
	qrels["qmissing"] = map[string]int{"nope": 1}
	qrels["qzero"] = map[string]int{docs[0].ID: 0}
	return qs, qrels, docs
}

func TestSample(t *testing.T) {
	qs, qrels, docs := corpus(20, 200)
	v := Sample(qs, qrels, docs, 5, 30, 7)
	var queries, rel, other []Item
	for _, it := range v.Items {
		switch it.Group {
		case GroupQuery:
			queries = append(queries, it)
		case GroupRelevant:
			rel = append(rel, it)
		default:
			other = append(other, it)
		}
	}
	if len(queries) != 5 || len(rel) != 10 || len(other) != 20 {
		t.Fatalf("%d queries, %d relevant, %d other; want 5, 10, 20 (documents bounded by 30)", len(queries), len(rel), len(other))
	}
	// Every relevant document of every sampled query is there, linked.
	if len(v.Links) != 10 {
		t.Fatalf("%d links, want 10", len(v.Links))
	}
	for _, l := range v.Links {
		q, d := v.Items[l[0]], v.Items[l[1]]
		if q.Group != GroupQuery || d.Group != GroupRelevant || qrels[q.ID][d.ID] <= 0 {
			t.Fatalf("link %v: %+v -> %+v", l, q, d)
		}
	}
	for _, it := range queries {
		if it.ID == "qmissing" || it.ID == "qzero" {
			t.Fatalf("query %s has no relevant document in the corpus, yet it was sampled", it.ID)
		}
	}
	if !strings.HasPrefix(rel[0].Text, "t document ") {
		t.Fatalf("document text %q: want title and text", rel[0].Text)
	}
	// Seeded: the same seed gives the same items, another seed others.
	same := Sample(qs, qrels, docs, 5, 30, 7)
	if !slices.Equal(same.Items, v.Items) || !slices.Equal(same.Links, v.Links) {
		t.Fatal("same seed, different sample")
	}
	if diff := Sample(qs, qrels, docs, 5, 30, 8); slices.Equal(diff.Items, v.Items) {
		t.Fatal("another seed, same sample")
	}
	// Bounds above what exists take everything; relevant documents are
	// kept even beyond the document bound.
	all := Sample(qs, qrels, docs, 100, 1000, 1)
	if len(all.Items) != 20+200 {
		t.Fatalf("%d items, want all 20 queries and 200 documents", len(all.Items))
	}
	few := Sample(qs, qrels, docs, 20, 3, 1)
	if len(few.Items) != 20+40 {
		t.Fatalf("%d items, want 20 queries and their 40 relevant documents", len(few.Items))
	}
}

// clustered returns n vectors of 3 clusters in 16 dimensions.
func clustered(n int) [][]float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]float32, n)
	for i := range out {
		v := make([]float32, 16)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		v[i%3] += 20
		out[i] = v
	}
	return out
}

func TestComputeAndFiles(t *testing.T) {
	qs, qrels, docs := corpus(10, 60)
	v := Sample(qs, qrels, docs, 10, 60, 1)
	vecs := clustered(len(v.Items))
	opts := Options{Methods: []string{PCA, UMAP}, UMAP: embmap.UMAPOptions{Epochs: 50, Seed: 3}}
	if err := v.Compute("base", vecs, opts); err != nil {
		t.Fatal(err)
	}
	if err := v.Compute("tuned", vecs[:3], opts); err == nil {
		t.Fatal("3 vectors for 70 items accepted")
	}
	if err := v.Compute("base", vecs, Options{Methods: []string{"tsne"}}); err == nil {
		t.Fatal("unknown method accepted")
	}
	if len(v.Maps) != 2 || v.Maps[0].Method != PCA || len(v.Maps[1].Points) != len(v.Items) {
		t.Fatalf("maps: %+v", v.Maps)
	}
	for _, m := range v.Maps {
		if m.Trustworthiness < 0.8 || m.Trustworthiness > 1 {
			t.Errorf("%s: trustworthiness %.3f on three clear clusters", m.Method, m.Trustworthiness)
		}
	}
	dir := t.TempDir()
	if err := v.WriteCSV(filepath.Join(dir, "maps.csv")); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(filepath.Join(dir, "maps.csv"))
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 1+2*len(v.Items) || strings.Join(rows[0], ",") != "model,method,group,id,x,y" {
		t.Fatalf("maps.csv: %d rows, header %v, %v", len(rows), rows[0], err)
	}
	if err := v.WriteJSON(filepath.Join(dir, "maps.json")); err != nil {
		t.Fatal(err)
	}
	var back View
	b, _ := os.ReadFile(filepath.Join(dir, "maps.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Maps) != 2 || back.Maps[1].Points[5] != v.Maps[1].Points[5] {
		t.Fatalf("maps.json does not read back: %v", err)
	}
	charts := v.Charts()
	if len(charts) != 2 || charts[1].Title != "base UMAP map" {
		t.Fatalf("charts: %+v", charts)
	}
	if _, err := json.Marshal(charts[0].Option); err != nil {
		t.Fatal(err)
	}
}

// TestPageDataEscaped: texts that try to close the script element or open
// a comment stay inside the JSON string.
func TestPageDataEscaped(t *testing.T) {
	v := &View{Title: "t", Items: []Item{{ID: "</script><script>alert(1)</script>", Group: GroupQuery, Text: "<!-- x & y -->"}},
		Maps: []Map{{Model: "base", Method: PCA, Points: []embmap.Point{{X: 1, Y: 2}}}}}
	path := filepath.Join(t.TempDir(), "viz.html")
	if err := v.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	page := string(b)
	start := strings.Index(page, `<script type="application/json" id="viz-data">`)
	end := strings.Index(page[start:], "</script>")
	data := page[start+len(`<script type="application/json" id="viz-data">`) : start+end]
	if strings.ContainsAny(data, "<>") || !strings.Contains(data, `\u003c/script\u003e`) {
		t.Fatalf("data element holds %q", data)
	}
	var back View
	if err := json.Unmarshal([]byte(data), &back); err != nil || back.Items[0].Text != "<!-- x & y -->" {
		t.Fatalf("data does not read back: %v %+v", err, back.Items)
	}
}

// TestSection: the report accepts the view's section as it is.
func TestSection(t *testing.T) {
	qs, qrels, docs := corpus(5, 30)
	v := Sample(qs, qrels, docs, 5, 30, 1)
	if err := v.Compute("base", clustered(len(v.Items)), Options{Methods: []string{PCA}}); err != nil {
		t.Fatal(err)
	}
	s := v.Section()
	if len(s.Charts) != 1 || !strings.Contains(string(s.Body), "trustworthiness") {
		t.Fatalf("section %+v", s)
	}
	var r report.Report
	r.Data = &report.Data{}
	if err := r.Add(s); err != nil {
		t.Fatal(err)
	}
}
