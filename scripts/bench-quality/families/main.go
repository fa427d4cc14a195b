// Command families cuts two package families (e.g. libraries and Python
// modules) out of the shared debian-packages data set, for the domain-shift
// benchmark in scripts/bench-quality: one BEIR folder per family with its
// documents, its public queries split 70/15/15 (seeded) into train,
// validation and a held-out test split.
//
// A query or document belongs to a family when one of the packages it
// describes does: queries are matched to packages by their synopsis, and
// documents by their long description (packages.csv.gz), whitespace-folded.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/scripts/internal/debdata"
)

// families name the package families by their Debian package names.
var families = map[string]func(pkg string) bool{
	"lib":    func(p string) bool { return strings.HasPrefix(p, "lib") && !strings.HasSuffix(p, "-perl") },
	"python": func(p string) bool { return strings.HasPrefix(p, "python3-") },
	"perl":   func(p string) bool { return strings.HasPrefix(p, "lib") && strings.HasSuffix(p, "-perl") },
	"golang": func(p string) bool { return strings.HasPrefix(p, "golang-") },
}

func main() {
	data := flag.String("data", "", "debian-packages folder (packages.csv.gz, beir/)")
	out := flag.String("out", "", "folder to write one BEIR folder per family into")
	list := flag.String("families", "lib,python", "families to cut, comma-separated: lib, python, perl, golang")
	maxQ := flag.Int("queries", 1500, "at most this many queries per family (seeded sample)")
	maxD := flag.Int("docs", 4000, "at most this many documents per family: the judged ones, then a seeded sample")
	seed := flag.Uint64("seed", 1, "sampling and split seed")
	flag.Parse()
	if err := run(*data, *out, strings.Split(*list, ","), *maxQ, *maxD, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "families:", err)
		os.Exit(1)
	}
}

func fold(s string) string { return strings.Join(strings.Fields(s), " ") }

func run(data, out string, names []string, maxQ, maxD int, seed uint64) error {
	if data == "" || out == "" {
		return errors.New("give --data and --out")
	}
	synopsis, description, err := readPackages(filepath.Join(data, "packages.csv.gz"))
	if err != nil {
		return err
	}
	var docs []debdata.Doc
	if err := debdata.ReadJSONL(filepath.Join(data, "beir", "corpus.jsonl.gz"), func(d debdata.Doc) { docs = append(docs, d) }); err != nil {
		return err
	}
	var queries []debdata.Query
	if err := debdata.ReadJSONL(filepath.Join(data, "beir", "queries.jsonl.gz"), func(q debdata.Query) { queries = append(queries, q) }); err != nil {
		return err
	}
	qrels := map[string][]string{}
	for _, split := range []string{"train", "validation"} {
		if err := debdata.ReadQrels(filepath.Join(data, "beir", "qrels", split+".tsv"), qrels); err != nil {
			return err
		}
	}
	for _, name := range names {
		in, ok := families[name]
		if !ok {
			return fmt.Errorf("unknown family %q", name)
		}
		member := func(pkgs []string) bool {
			for _, p := range pkgs {
				if in(p) {
					return true
				}
			}
			return false
		}
		var qs []debdata.Query
		for _, q := range queries {
			if len(qrels[q.ID]) > 0 && member(synopsis[fold(q.Text)]) {
				qs = append(qs, q)
			}
		}
		rng := rand.New(rand.NewPCG(seed, uint64(len(name))))
		rng.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
		qs = qs[:min(len(qs), maxQ)]
		judged := map[string]bool{}
		for _, q := range qs {
			for _, d := range qrels[q.ID] {
				judged[d] = true
			}
		}
		var keep, others []debdata.Doc
		for _, d := range docs {
			switch {
			case judged[d.ID]:
				keep = append(keep, d)
			case member(description[fold(d.Text)]):
				others = append(others, d)
			}
		}
		rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
		keep = append(keep, others[:min(len(others), max(0, maxD-len(keep)))]...)
		sort.Slice(keep, func(i, j int) bool { return keep[i].ID < keep[j].ID })
		if err := write(filepath.Join(out, name), keep, qs, qrels); err != nil {
			return err
		}
		fmt.Printf("%s: %d queries, %d documents (%d judged)\n", name, len(qs), len(keep), len(judged))
	}
	return nil
}

// readPackages maps folded synopses and long descriptions to package names.
func readPackages(path string) (synopsis, description map[string][]string, err error) {
	synopsis, description = map[string][]string{}, map[string][]string{}
	err = debdata.ReadPackages(path, func(pkg, syn, desc string) {
		synopsis[fold(syn)] = append(synopsis[fold(syn)], pkg)
		description[fold(desc)] = append(description[fold(desc)], pkg)
	})
	return synopsis, description, err
}

// write lays a family out as a BEIR folder, its queries split 70/15/15 in
// their (shuffled) order.
func write(dir string, docs []debdata.Doc, qs []debdata.Query, qrels map[string][]string) error {
	if err := os.MkdirAll(filepath.Join(dir, "qrels"), 0o755); err != nil {
		return err
	}
	if err := debdata.WriteJSONL(filepath.Join(dir, "corpus.jsonl"), docs); err != nil {
		return err
	}
	if err := debdata.WriteJSONL(filepath.Join(dir, "queries.jsonl"), qs); err != nil {
		return err
	}
	nTrain, nVal := len(qs)*70/100, len(qs)*15/100
	splits := map[string][]debdata.Query{"train": qs[:nTrain], "validation": qs[nTrain : nTrain+nVal], "test": qs[nTrain+nVal:]}
	for name, part := range splits {
		ids := make([]string, len(part))
		for i, q := range part {
			ids[i] = q.ID
		}
		if err := debdata.WriteQrels(filepath.Join(dir, "qrels", name+".tsv"), ids, qrels); err != nil {
			return err
		}
	}
	return nil
}
