package importer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ragtune/ragtune/retrieval/dataset"
)

// importBEIR reads a BEIR folder: corpus.jsonl ({"_id","title","text"},
// optional "metadata" object), queries.jsonl ({"_id","text"}) and
// qrels/<split>.tsv ("query-id corpus-id score", tab-separated, header line
// optional). Each may be gzipped (.jsonl.gz, .tsv.gz). The split "dev" is
// imported as validation.
func importBEIR(b *builder, dir string) error {
	corpus, err := findOne(dir, "corpus.jsonl")
	if err != nil {
		return err
	}
	queries, err := findOne(dir, "queries.jsonl")
	if err != nil {
		return err
	}
	err = jsonlSource(corpus, b.enc)(func(r *record) error {
		if r.bad != nil {
			return b.bad(r.bad)
		}
		id, err := r.need("_id")
		if err != nil {
			return b.bad(err)
		}
		if !r.has("text") {
			return b.bad(r.errAt("text", dataset.ErrMissingField))
		}
		doc := dataset.Doc{ID: id, Metadata: r.objects["metadata"]}
		if doc.Text, err = r.str("text"); err != nil {
			return b.bad(err)
		}
		if doc.Title, err = r.str("title"); err != nil {
			return b.bad(err)
		}
		_, err = b.addDoc(doc, r, "_id")
		return err
	})
	if err != nil {
		return err
	}
	err = jsonlSource(queries, b.enc)(func(r *record) error {
		if r.bad != nil {
			return b.bad(r.bad)
		}
		id, err := r.need("_id")
		if err != nil {
			return b.bad(err)
		}
		text, err := r.need("text")
		if err != nil {
			return b.bad(err)
		}
		q := dataset.Query{ID: id, Text: text}
		if g, ok := r.objects["generated"]; ok {
			if q.Generated, err = generation(r, g); err != nil {
				return b.bad(err)
			}
		}
		return b.addQuery(q, r, "_id")
	})
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "qrels", "*.tsv*"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return fmt.Errorf("BEIR folder %s: no qrels/<split>.tsv files", dir)
	}
	splits := map[string]string{}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".gz"), ".tsv")
		split := splitName(name)
		if other, dup := splits[split]; dup {
			return fmt.Errorf("BEIR folder %s: %s and %s are both split %s", dir, other, f, split)
		}
		splits[split] = f
		if err := readQrels(b, f, split); err != nil {
			return err
		}
	}
	return nil
}

// splitName maps BEIR split names onto ragtune's.
func splitName(name string) string {
	switch strings.ToLower(name) {
	case "dev", "valid", "val":
		return dataset.Validation
	}
	return name
}

// findOne finds name or name.gz in dir.
func findOne(dir, name string) (string, error) {
	for _, n := range []string{name, name + ".gz"} {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("BEIR folder %s: no %s or %s.gz", dir, name, name)
}

// readQrels reads one qrels file. Lines are "query-id<TAB>corpus-id<TAB>score"
// (BEIR) or "query-id iteration corpus-id score" (TREC); a first line whose
// score is not a number is the header.
func readQrels(b *builder, path, split string) error {
	rc, err := openMaybeGzip(path, b.enc)
	if err != nil {
		return err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		pos := &record{path: path, line: line}
		if !utf8.ValidString(text) {
			if err := b.bad(pos.errAt("", dataset.ErrInvalidUTF8)); err != nil {
				return err
			}
			continue
		}
		fields := strings.Split(text, "\t")
		if len(fields) == 1 {
			fields = strings.Fields(text)
		}
		var qid, did, score string
		switch len(fields) {
		case 3:
			qid, did, score = fields[0], fields[1], fields[2]
		case 4:
			qid, did, score = fields[0], fields[2], fields[3]
		default:
			if err := b.bad(pos.errAt("", fmt.Errorf("%w: %d fields, want query-id, corpus-id, score", dataset.ErrBadRecord, len(fields)))); err != nil {
				return err
			}
			continue
		}
		qid, did = strings.TrimSpace(qid), strings.TrimSpace(did)
		n, err := strconv.Atoi(strings.TrimSpace(score))
		if err != nil {
			if line == 1 {
				continue // header
			}
			if err := b.bad(pos.errAt("score", fmt.Errorf("%w: %q", dataset.ErrBadScore, score))); err != nil {
				return err
			}
			continue
		}
		if err := addJudgement(b, pos, split, qid, did, n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return &dataset.InputError{Path: path, Err: err}
	}
	return nil
}

func addJudgement(b *builder, pos *record, split, qid, did string, score int) error {
	if _, ok := b.queries[qid]; !ok {
		return b.bad(pos.errAt("query-id", fmt.Errorf("%w %q", dataset.ErrUnknownQuery, qid)))
	}
	if _, ok := b.docs[did]; !ok {
		return b.bad(pos.errAt("corpus-id", fmt.Errorf("%w %q", dataset.ErrUnknownDoc, did)))
	}
	if b.qrelSeen[split][[2]string{qid, did}] {
		return b.bad(pos.errAt("corpus-id", fmt.Errorf("%w: query %q judges document %q twice", dataset.ErrDuplicateID, qid, did)))
	}
	b.addQrel(split, dataset.Qrel{QueryID: qid, DocID: did, Score: score})
	return nil
}

// generation reads the mark ragtune's export writes on generated queries.
func generation(r *record, g map[string]string) (*dataset.Generation, error) {
	if g["source"] != dataset.SourceGenerated {
		return nil, r.errAt("generated", fmt.Errorf("%w: source %q, want %q", dataset.ErrBadRecord, g["source"], dataset.SourceGenerated))
	}
	seed, err := strconv.ParseUint(g["seed"], 10, 64)
	if err != nil {
		return nil, r.errAt("generated", fmt.Errorf("%w: seed %q", dataset.ErrBadRecord, g["seed"]))
	}
	return &dataset.Generation{Generator: g["generator"], Seed: seed, Mode: g["mode"], Parent: g["parent"]}, nil
}
