// Command makedata cuts the demo's data out of the shared debian-packages set
// (../shared/data/debian-packages, see its README): two BEIR folders that
// tell a domain-shift story in a few minutes on two cores.
//
//   - pretrain/: applications and tools (packages that are not libraries nor
//     language modules), train and validation queries; the demo trains its
//     tiny base model from scratch on it.
//   - target/: Python modules (python3-* packages), train, validation and a
//     held-out test split; the demo adapts the base to it with LoRA.
//
// The shipped files in scripts/demo/data were made with
//
//	go run ./scripts/demo/makedata --shared ../shared/data/debian-packages --out scripts/demo/data
//
// and the output depends only on the shared files and --seed.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/scripts/internal/debdata"
)

// family names the part of the archive a package belongs to.
func family(pkg string) string {
	switch {
	case strings.HasPrefix(pkg, "python3-"):
		return "python"
	case strings.HasPrefix(pkg, "lib"), strings.HasSuffix(pkg, "-perl"), strings.HasPrefix(pkg, "golang-"),
		strings.HasPrefix(pkg, "node-"), strings.HasPrefix(pkg, "r-cran-"), strings.HasPrefix(pkg, "ruby-"):
		return "library"
	default:
		return "application"
	}
}

func main() {
	shared := flag.String("shared", "../shared/data/debian-packages", "the debian-packages folder")
	out := flag.String("out", "scripts/demo/data", "where to write pretrain/ and target/")
	seed := flag.Uint64("seed", 7, "sampling seed")
	flag.Parse()
	if err := run(*shared, *out, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "makedata:", err)
		os.Exit(1)
	}
}

func run(shared, out string, seed uint64) error {
	docFamily, err := docFamilies(shared)
	if err != nil {
		return err
	}
	var docs []debdata.Doc
	if err := debdata.ReadJSONL(filepath.Join(shared, "beir/corpus.jsonl.gz"), func(d debdata.Doc) { docs = append(docs, d) }); err != nil {
		return err
	}
	byID := map[string]debdata.Doc{}
	for _, d := range docs {
		byID[d.ID] = d
	}
	queries := map[string]debdata.Query{}
	if err := debdata.ReadJSONL(filepath.Join(shared, "beir/queries.jsonl.gz"), func(q debdata.Query) { queries[q.ID] = q }); err != nil {
		return err
	}
	qrels := map[string][]string{}
	for _, split := range []string{"train", "validation"} {
		if err := debdata.ReadQrels(filepath.Join(shared, "beir/qrels", split+".tsv"), qrels); err != nil {
			return err
		}
	}

	// A query belongs to a family when all its relevant documents do.
	byFamily := map[string][]string{}
	for qid, rel := range qrels {
		fam := docFamily[byID[rel[0]].Text]
		for _, d := range rel[1:] {
			if docFamily[byID[d].Text] != fam {
				fam = ""
			}
		}
		if fam != "" {
			byFamily[fam] = append(byFamily[fam], qid)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	// Shuffled in a fixed family order: the draws come from one stream.
	for _, fam := range []string{"application", "python"} {
		ids := byFamily[fam]
		sort.Strings(ids)
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	}
	docsOf := func(fam string) []debdata.Doc {
		var ds []debdata.Doc
		for _, d := range docs {
			if docFamily[d.Text] == fam {
				ds = append(ds, d)
			}
		}
		rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
		return ds
	}

	app := byFamily["application"]
	if err := writeBEIR(filepath.Join(out, "pretrain"), map[string][]string{"train": app[:1600], "validation": app[1600:1700]},
		queries, qrels, byID, docsOf("application")[:400]); err != nil {
		return err
	}
	py := byFamily["python"]
	return writeBEIR(filepath.Join(out, "target"), map[string][]string{"train": py[:400], "validation": py[400:500], "test": py[500:700]},
		queries, qrels, byID, docsOf("python")[:600])
}

// docFamilies maps a long description to its packages' family; a text shared
// by packages of different families gets "mixed" and is used by neither part.
func docFamilies(shared string) (map[string]string, error) {
	fam := map[string]string{}
	err := debdata.ReadPackages(filepath.Join(shared, "packages.csv.gz"), func(pkg, _, desc string) {
		f := family(pkg)
		if old, ok := fam[desc]; ok && old != f {
			f = "mixed"
		}
		fam[desc] = f
	})
	return fam, err
}

// writeBEIR writes the splits' queries, their relevant documents and the
// distractors as a BEIR folder.
func writeBEIR(dir string, splits map[string][]string, queries map[string]debdata.Query, qrels map[string][]string,
	byID map[string]debdata.Doc, distractors []debdata.Doc) error {
	if err := os.MkdirAll(filepath.Join(dir, "qrels"), 0o755); err != nil {
		return err
	}
	inCorpus := map[string]bool{}
	var corpus []debdata.Doc
	add := func(d debdata.Doc) {
		if !inCorpus[d.ID] {
			inCorpus[d.ID] = true
			corpus = append(corpus, d)
		}
	}
	var qs []debdata.Query
	names := make([]string, 0, len(splits))
	for s := range splits {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		ids := append([]string(nil), splits[s]...)
		sort.Strings(ids)
		for _, qid := range ids {
			qs = append(qs, queries[qid])
			for _, d := range qrels[qid] {
				add(byID[d])
			}
		}
		if err := debdata.WriteQrels(filepath.Join(dir, "qrels", s+".tsv"), ids, qrels); err != nil {
			return err
		}
	}
	for _, d := range distractors {
		add(d)
	}
	sort.Slice(corpus, func(i, j int) bool { return corpus[i].ID < corpus[j].ID })
	if err := debdata.WriteJSONL(filepath.Join(dir, "corpus.jsonl"), corpus); err != nil {
		return err
	}
	return debdata.WriteJSONL(filepath.Join(dir, "queries.jsonl"), qs)
}
