package mapview

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/ragtune/ragtune/retrieval/evaluate"
)

// Sample chooses what to map: up to maxQueries judged queries (a seeded
// sample, kept in input order) that have a relevant document in docs, every
// document relevant to them, and a seeded sample of the other documents so
// that the documents number maxDocs (more when the relevant ones alone
// exceed it). Items come queries first, then relevant documents, then the
// others; docText gives each document's text.
func Sample(queries []evaluate.Query, qrels evaluate.Qrels, docs []evaluate.Doc, maxQueries, maxDocs int, seed uint64) *View {
	docIndex := make(map[string]int, len(docs))
	for i, d := range docs {
		docIndex[d.ID] = i
	}
	judged, _ := evaluate.JudgedQueries(queries, qrels)
	var usable []evaluate.Query
	for _, q := range judged {
		for did, g := range qrels[q.ID] {
			if _, ok := docIndex[did]; ok && g > 0 {
				usable = append(usable, q)
				break
			}
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x5a3b1e))
	chosen := pick(rng, len(usable), maxQueries)
	v := &View{}
	itemOf := map[string]int{} // document id -> item
	var links [][2]string
	for _, i := range chosen {
		q := usable[i]
		v.Items = append(v.Items, Item{ID: q.ID, Group: GroupQuery, Text: q.Text})
		rel := sortedIDs(qrels[q.ID])
		for _, did := range rel {
			if _, ok := docIndex[did]; ok && qrels[q.ID][did] > 0 {
				links = append(links, [2]string{q.ID, did})
				itemOf[did] = -1
			}
		}
	}
	nq := len(v.Items)
	for _, d := range docs { // relevant documents, in corpus order
		if _, ok := itemOf[d.ID]; ok {
			itemOf[d.ID] = len(v.Items)
			v.Items = append(v.Items, Item{ID: d.ID, Group: GroupRelevant, Text: evaluate.DocText(d)})
		}
	}
	nRel := len(v.Items) - nq
	var others []int
	for i, d := range docs {
		if _, ok := itemOf[d.ID]; !ok {
			others = append(others, i)
		}
	}
	for _, i := range pick(rng, len(others), maxDocs-nRel) {
		d := docs[others[i]]
		v.Items = append(v.Items, Item{ID: d.ID, Group: GroupOther, Text: evaluate.DocText(d)})
	}
	queryItem := map[string]int{}
	for i := range nq {
		queryItem[v.Items[i].ID] = i
	}
	for _, l := range links {
		v.Links = append(v.Links, [2]int{queryItem[l[0]], itemOf[l[1]]})
	}
	v.Notes = append(v.Notes, fmt.Sprintf("%d of %d judged queries with a relevant document (seeded sample, seed %d); their %d relevant documents; %d of the other %d documents (seeded sample)",
		nq, len(usable), seed, nRel, len(v.Items)-nq-nRel, len(others)))
	return v
}

// pick returns min(k, n) indices out of n, a seeded sample in increasing
// order (all of them when k >= n).
func pick(rng *rand.Rand, n, k int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if k < 0 {
		k = 0
	}
	if k >= n {
		return idx
	}
	rng.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	idx = idx[:k]
	slices.Sort(idx)
	return idx
}

func sortedIDs(m map[string]int) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
