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
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/safefile"
)

// families name the package families by their Debian package names.
var families = map[string]func(pkg string) bool{
	"lib":    func(p string) bool { return strings.HasPrefix(p, "lib") && !strings.HasSuffix(p, "-perl") },
	"python": func(p string) bool { return strings.HasPrefix(p, "python3-") },
	"perl":   func(p string) bool { return strings.HasPrefix(p, "lib") && strings.HasSuffix(p, "-perl") },
	"golang": func(p string) bool { return strings.HasPrefix(p, "golang-") },
}

type doc struct {
	ID    string `json:"_id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

type query struct {
	ID   string `json:"_id"`
	Text string `json:"text"`
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
	var docs []doc
	if err := readJSONL(filepath.Join(data, "beir", "corpus.jsonl.gz"), func(d doc) { docs = append(docs, d) }); err != nil {
		return err
	}
	var queries []query
	if err := readJSONL(filepath.Join(data, "beir", "queries.jsonl.gz"), func(q query) { queries = append(queries, q) }); err != nil {
		return err
	}
	qrels := map[string][]string{}
	for _, split := range []string{"train", "validation"} {
		if err := readQrels(filepath.Join(data, "beir", "qrels", split+".tsv"), qrels); err != nil {
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
		var qs []query
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
		var keep, others []doc
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
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	r := csv.NewReader(gz)
	synopsis, description = map[string][]string{}, map[string][]string{}
	for line := 0; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return synopsis, description, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if line == 0 || len(rec) != 3 {
			continue // header
		}
		synopsis[fold(rec[1])] = append(synopsis[fold(rec[1])], rec[0])
		description[fold(rec[2])] = append(description[fold(rec[2])], rec[0])
	}
}

func readJSONL[T any](path string, each func(T)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	sc := bufio.NewScanner(gz)
	sc.Buffer(nil, 1<<24)
	for n := 1; sc.Scan(); n++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		each(v)
	}
	return sc.Err()
}

func readQrels(path string, into map[string][]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for n, line := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return fmt.Errorf("%s:%d: want 3 tab-separated fields", path, n+2)
		}
		into[f[0]] = append(into[f[0]], f[1])
	}
	return nil
}

// write lays a family out as a BEIR folder, its queries split 70/15/15 in
// their (shuffled) order.
func write(dir string, docs []doc, qs []query, qrels map[string][]string) error {
	if err := os.MkdirAll(filepath.Join(dir, "qrels"), 0o755); err != nil {
		return err
	}
	if err := writeJSONL(filepath.Join(dir, "corpus.jsonl"), docs); err != nil {
		return err
	}
	if err := writeJSONL(filepath.Join(dir, "queries.jsonl"), qs); err != nil {
		return err
	}
	nTrain, nVal := len(qs)*70/100, len(qs)*15/100
	splits := map[string][]query{"train": qs[:nTrain], "validation": qs[nTrain : nTrain+nVal], "test": qs[nTrain+nVal:]}
	for name, part := range splits {
		var b strings.Builder
		b.WriteString("query-id\tcorpus-id\tscore\n")
		for _, q := range part {
			for _, d := range qrels[q.ID] {
				fmt.Fprintf(&b, "%s\t%s\t1\n", q.ID, d)
			}
		}
		if err := safefile.WriteBytes(filepath.Join(dir, "qrels", name+".tsv"), []byte(b.String())); err != nil {
			return err
		}
	}
	return nil
}

func writeJSONL[T any](path string, items []T) error {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return safefile.WriteBytes(path, []byte(b.String()))
}
