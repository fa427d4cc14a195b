package train

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// miningData: q1's positive d1 has an exact duplicate d3 (unjudged: a false
// negative the margin must catch) and a second judged-relevant document d2
// in the validation split (never a negative); d4 is the real hard negative.
// q2 shares no word with any document but its positive.
func miningData() *dataset.Dataset {
	docs := []dataset.Doc{
		{ID: "d1", Text: "python yaml parser library for reading yaml files"},
		{ID: "d2", Text: "yaml parser python module"},
		{ID: "d3", Text: "python yaml parser library for reading yaml files "}, // d1's words: the same BM25 score
		{ID: "d4", Text: "python json parser library"},
		{ID: "d5", Text: "zebra crossing"},
	}
	for i := 6; i < 30; i++ {
		docs = append(docs, dataset.Doc{ID: fmt.Sprintf("d%d", i), Text: fmt.Sprintf("gnome desktop applet number %d", i)})
	}
	return &dataset.Dataset{
		Corpus:  docs,
		Queries: []dataset.Query{{ID: "q1", Text: "python yaml parser library"}, {ID: "q2", Text: "zebra crossing"}},
		Qrels: map[string][]dataset.Qrel{
			"train":      {{QueryID: "q1", DocID: "d1", Score: 1}, {QueryID: "q2", DocID: "d5", Score: 1}},
			"validation": {{QueryID: "q1", DocID: "d2", Score: 1}},
		},
	}
}

// mineOnce mines with BM25 and returns each example's negatives as
// document ids (the test's encoder maps a text to its document's index).
func mineOnce(t *testing.T, d *dataset.Dataset, margin float64, count int, seed uint64) ([][]string, dataset.NegativeReport) {
	t.Helper()
	byText := map[string]int32{}
	for i, doc := range d.Corpus {
		if _, dup := byText[doc.Text]; !dup {
			byText[doc.Text] = int32(i)
		}
	}
	ids := map[int32]string{}
	for i, doc := range d.Corpus {
		ids[int32(i)] = doc.ID
	}
	encode := func(s string) ([]int32, error) { return []int32{byText[s]}, nil }
	cfg := Config{NegativesFrom: NegativesBM25, Negatives: count, TrainSplit: "train", Seed: seed, NegativeMargin: margin}
	m, err := newMiner(d, cfg, encode)
	if err != nil {
		t.Fatal(err)
	}
	examples := []Example{{QueryID: "q1", PositiveID: "d1"}, {QueryID: "q2", PositiveID: "d5"}}
	rk, err := d.BM25Ranker()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.mine(rk, examples); err != nil {
		t.Fatal(err)
	}
	out := make([][]string, len(examples))
	for i, ex := range examples {
		for _, n := range ex.Negatives {
			out[i] = append(out[i], ids[n[0]])
		}
	}
	return out, m.Report
}

func TestMiningFiltersJudgedAndNearPositives(t *testing.T) {
	d := miningData()
	// No margin: the duplicate d3 is the hardest negative; d1 and d2 never.
	noMargin, _ := mineOnce(t, d, -1, 2, 1)
	if got := noMargin[0]; len(got) != 2 || got[0] != "d3" || got[1] != "d4" {
		t.Fatalf("q1 without margin: %v, want [d3 d4] (judged d1, d2 removed)", got)
	}
	one, rep := mineOnce(t, d, 0.05, 1, 1)
	if q1 := one[0]; len(q1) != 1 || q1[0] != "d4" {
		t.Fatalf("q1 with margin 0.05: %v, want [d4]: the duplicate d3 dropped", q1)
	}
	if rep.FilteredByMargin < 1 {
		t.Fatalf("report %+v: the margin dropped nothing", rep)
	}
	neg, _ := mineOnce(t, d, 0.05, 2, 1)
	for i, negs := range neg {
		for _, id := range negs {
			if id == "d1" || id == "d2" || (i == 1 && id == "d5") {
				t.Fatalf("example %d got the judged-relevant %s as a negative: %v", i, id, negs)
			}
		}
	}
	// q2 matches only its positive: topped up with seeded random negatives.
	if len(neg[1]) != 2 {
		t.Fatalf("q2: %v, want 2 random negatives to fill in", neg[1])
	}
	again, _ := mineOnce(t, d, 0.05, 2, 1)
	other, _ := mineOnce(t, d, 0.05, 2, 7)
	if !slices.Equal(again[1], neg[1]) {
		t.Fatalf("same seed, different negatives: %v and %v", neg[1], again[1])
	}
	if slices.Equal(other[1], neg[1]) && slices.Equal(mustMine(t, d, 11)[1], neg[1]) {
		t.Fatalf("seeds 1, 7 and 11 give the same random negatives %v", neg[1])
	}
}

func mustMine(t *testing.T, d *dataset.Dataset, seed uint64) [][]string {
	n, _ := mineOnce(t, d, 0.05, 2, seed)
	return n
}

func TestMinerRejectsBadConfig(t *testing.T) {
	d := miningData()
	enc := func(string) ([]int32, error) { return nil, nil }
	for _, cfg := range []Config{
		{NegativesFrom: "tfidf", Negatives: 1, TrainSplit: "train"},
		{NegativesFrom: NegativesModel, RemineEvery: -2, Negatives: 1, TrainSplit: "train"},
	} {
		if _, err := newMiner(d, cfg, enc); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
