package dataset_test

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/dataset"
	"github.com/ragtune/ragtune/retrieval/dataset/importer"
	"github.com/ragtune/ragtune/retrieval/shareddata"
)

var miniOnce struct {
	sync.Once
	d   *dataset.Dataset
	err error
}

// mini imports the shared mini data set once; tests must not modify it.
func mini(t *testing.T) *dataset.Dataset {
	t.Helper()
	dir := shareddata.Dir(t, "debian-packages", "mini")
	miniOnce.Do(func() { miniOnce.d, _, miniOnce.err = importer.Import(dir, importer.Options{}) })
	if miniOnce.err != nil {
		t.Fatal(miniOnce.err)
	}
	return miniOnce.d
}

func TestResplitMini(t *testing.T) {
	d := mini(t)
	out, rep, err := d.Resplit(dataset.DefaultSplit)
	leaks := rep.Leaks
	if err != nil || len(leaks) != 0 {
		t.Fatalf("%v, %d leaks", err, len(leaks))
	}
	total := 0
	for _, s := range []string{dataset.Train, dataset.Validation, dataset.Test} {
		total += len(out.SplitQueries(s))
	}
	n := float64(total)
	if got := float64(len(out.SplitQueries(dataset.Train))) / n; got < 0.66 || got > 0.74 {
		t.Fatalf("train share %.3f", got)
	}
	if total != 1700 || len(out.Qrels[dataset.Test]) == 0 {
		t.Fatalf("%d queries", total)
	}
	again, _, _ := d.Resplit(dataset.DefaultSplit)
	if !reflect.DeepEqual(again.Qrels, out.Qrels) {
		t.Fatal("same seed, different split")
	}
	other := dataset.DefaultSplit
	other.Seed = 2
	if diff, _, _ := d.Resplit(other); reflect.DeepEqual(diff.Qrels, out.Qrels) {
		t.Fatal("seed ignored")
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestResplitKeepsConnectedQueriesTogether(t *testing.T) {
	d := &dataset.Dataset{
		Corpus:  []dataset.Doc{{ID: "a", Text: "x"}, {ID: "b", Text: "y"}, {ID: "c", Text: "z"}},
		Queries: []dataset.Query{{ID: "q1", Text: "One"}, {ID: "q2", Text: "two"}, {ID: "q3", Text: " one "}, {ID: "q4", Text: "four"}},
		Qrels: map[string][]dataset.Qrel{dataset.Train: {
			{QueryID: "q1", DocID: "a", Score: 1}, {QueryID: "q2", DocID: "a", Score: 1},
			{QueryID: "q3", DocID: "b", Score: 1}, {QueryID: "q4", DocID: "c", Score: 1}}},
	}
	for seed := uint64(0); seed < 20; seed++ {
		out, rep, err := d.Resplit(dataset.SplitOptions{Train: 0.5, Validation: 0.5, Seed: seed})
		leaks := rep.Leaks
		if err != nil || len(leaks) != 0 {
			t.Fatalf("seed %d: %v %v", seed, err, leaks)
		}
		// q1-q2 share a document, q1-q3 a normalised text: one group.
		for _, s := range out.Splits() {
			if n := len(out.SplitQueries(s)); n != 3 && n != 1 {
				t.Fatalf("seed %d: split %s has %d queries", seed, s, n)
			}
		}
	}
	_, rep, err := d.Resplit(dataset.SplitOptions{Train: 0.5, Validation: 0.5, Seed: 3, AllowLeak: true})
	leaks := rep.Leaks
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("query by query: %d leaks", len(leaks))
	if _, _, err := d.Resplit(dataset.SplitOptions{Train: 0.5, Validation: 0.6}); err == nil {
		t.Fatal("fractions summing to 1.1 accepted")
	}
}

func TestFewShot(t *testing.T) {
	d := mini(t)
	out, err := d.FewShot(dataset.Train, 50, 0, 1)
	if err != nil || len(out.SplitQueries(dataset.Train)) != 50 || len(out.Qrels[dataset.Validation]) != len(d.Qrels[dataset.Validation]) {
		t.Fatalf("n=50: %v", err)
	}
	out, err = d.FewShot(dataset.Train, 0, 0.1, 1)
	if err != nil || len(out.SplitQueries(dataset.Train)) != 140 {
		t.Fatalf("10%%: %v", err)
	}
	if _, err := d.FewShot(dataset.Train, 5000, 0, 1); err == nil {
		t.Fatal("more queries than the split accepted")
	}
}

type bm25Ranker struct{ ix *bm25.Index }

func (r bm25Ranker) Search(qs []string, k int) ([][]dataset.Hit, error) {
	res, err := r.ix.Search(qs, k)
	out := make([][]dataset.Hit, len(res))
	for i, hits := range res {
		for _, h := range hits {
			out[i] = append(out[i], dataset.Hit{DocID: h.ID, Score: float64(h.Score)})
		}
	}
	return out, err
}

func TestNegatives(t *testing.T) {
	d := mini(t)
	ids, texts := make([]string, len(d.Corpus)), make([]string, len(d.Corpus))
	for i, doc := range d.Corpus {
		ids[i], texts[i] = doc.ID, d.DocText(doc)
	}
	ix, err := bm25.Build(ids, texts, bm25.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	rel := d.Relevant(dataset.Train)
	checkNoPositives := func(name string, out *dataset.Dataset) {
		for _, e := range out.Examples[dataset.Train] {
			for j, id := range e.NegativeIDs {
				if rel[e.QueryID][id] > 0 {
					t.Fatalf("%s: relevant document %s used as a negative of %s", name, id, e.QueryID)
				}
				if e.Negatives[j] == "" {
					t.Fatalf("%s: negative without text", name)
				}
			}
		}
	}
	opts := dataset.NegativeOptions{Split: dataset.Train, Count: 2, Seed: 1, RangeMin: 3, RangeMax: 20}
	hard, rep, err := d.HardNegatives(bm25Ranker{ix}, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkNoPositives("hard", hard)
	if rep.Examples != len(d.Qrels[dataset.Train]) || rep.Negatives < rep.Examples || rep.NegativeScores.Mean >= rep.PositiveScores.Mean {
		t.Fatalf("hard report %+v", rep)
	}
	// The window starts after the 3 best non-relevant documents.
	e := hard.Examples[dataset.Train][0]
	top, _ := bm25Ranker{ix}.Search([]string{e.Anchor}, 30)
	var nonRel []string
	for _, h := range top[0] {
		if rel[e.QueryID][h.DocID] == 0 {
			nonRel = append(nonRel, h.DocID)
		}
	}
	if len(nonRel) > 4 && !reflect.DeepEqual(e.NegativeIDs, nonRel[3:5]) {
		t.Fatalf("window: got %v, ranking %v", e.NegativeIDs, nonRel[:6])
	}
	opts.RelativeMargin = 0.5
	_, margin, err := d.HardNegatives(bm25Ranker{ix}, opts)
	if err != nil || margin.FilteredByMargin == 0 || margin.Negatives >= rep.Negatives {
		t.Fatalf("margin report %+v %v", margin, err)
	}
	random, rrep, err := d.RandomNegatives(opts)
	if err != nil || rrep.Negatives != 2*rrep.Examples {
		t.Fatalf("random %+v %v", rrep, err)
	}
	checkNoPositives("random", random)
	if err := random.Validate(); err != nil {
		t.Fatal(err)
	}
	again, _, _ := d.RandomNegatives(opts)
	if !reflect.DeepEqual(again.Examples, random.Examples) {
		t.Fatal("random negatives not reproducible")
	}
}

func TestCheckFindsEachProblem(t *testing.T) {
	d := &dataset.Dataset{
		Corpus: []dataset.Doc{
			{ID: "d1", Text: "fine text"}, {ID: "d2", Text: "  \n\t"}, {ID: "d3", Text: "a\n\n\nb"},
			{ID: "d4", Text: "Fine  TEXT"}, {ID: "d5", Text: strings.Repeat("w ", 20)}, {ID: "d1", Text: "again"},
		},
		Queries: []dataset.Query{{ID: "q1", Text: "q"}, {ID: "q2", Text: " "}, {ID: "q3", Text: "Q"}},
		Qrels: map[string][]dataset.Qrel{
			dataset.Train:      {{QueryID: "q1", DocID: "d1", Score: 1}, {QueryID: "q9", DocID: "d1", Score: 1}},
			dataset.Validation: {{QueryID: "q3", DocID: "d1", Score: 1}, {QueryID: "q2", DocID: "d8", Score: 0}},
		},
	}
	rep := d.Check(dataset.CheckOptions{MaxTokens: 10})
	want := map[string]int{
		dataset.ProblemDuplicateID: 1, dataset.ProblemEmptyText: 2, dataset.ProblemBlankLines: 1,
		dataset.ProblemDuplicateText: 2, dataset.ProblemTooLong: 1, dataset.ProblemDanglingID: 2,
		dataset.ProblemNoRelevant: 1, dataset.ProblemSplitLeak: 2,
	}
	if !reflect.DeepEqual(rep.Counts, want) {
		t.Fatalf("counts %v\nwant   %v\n%v", rep.Counts, want, rep.Problems)
	}
	if clean := mini(t).Check(dataset.CheckOptions{}); clean.Counts[dataset.ProblemDanglingID]+clean.Counts[dataset.ProblemEmptyText] != 0 {
		t.Fatalf("mini: %v", clean.Counts)
	}
}

func TestStats(t *testing.T) {
	st := mini(t).Stats()
	if st.Docs != 6000 || st.Queries != 1700 || st.Splits[dataset.Train].Queries != 1400 || st.DocWords.Max < st.DocWords.Median {
		t.Fatalf("%+v", st)
	}
}
