package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/ragtune/ragtune/retrieval/analysis"
	"github.com/ragtune/ragtune/tune/hpo/storage"
	"github.com/ragtune/ragtune/tune/mapview"
	"github.com/ragtune/ragtune/tune/report"
)

func init() {
	register(&ucli.Command{
		Name:      "report",
		Usage:     "write a study's self-contained interactive HTML report (DIR/report.html)",
		ArgsUsage: " ",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "storage", Usage: "study storage URL: sqlite:///study.db, sqlite:////abs/study.db, postgresql://user@host/db", Required: true},
			&ucli.StringFlag{Name: "study", Usage: "study name", Required: true},
			&ucli.StringFlag{Name: "out", Usage: "output folder", Required: true},
			&ucli.BoolFlag{Name: "seed-files", Usage: "also write the original work's files: " + seedFileList()},
			&ucli.StringSliceFlag{Name: "maps", Usage: "add embedding maps: maps.json written by `ragtune viz --out` (repeatable)"},
			&ucli.StringSliceFlag{Name: "analysis", Usage: "add a failure analysis: analysis.json written by `ragtune analyze --out` (repeatable)"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON"},
			&ucli.BoolFlag{Name: "quiet", Usage: "no progress line"},
		},
		Action: runReport,
	})
}

func seedFileList() string {
	s := ""
	for _, f := range report.Figures {
		for name, fig := range report.SeedFiles {
			if fig == f {
				s += name + ", "
			}
		}
	}
	return s + report.HeatmapFile
}

// reportJSON is report's --json document.
type reportJSON struct {
	Report  string         `json:"report"`
	Files   []string       `json:"files"`
	Skipped []string       `json:"skipped,omitempty"`
	Study   string         `json:"study"`
	Trials  int            `json:"trials"`
	Counts  map[string]int `json:"counts"`
	Best    []int          `json:"best"`
	Seconds float64        `json:"seconds"`
}

func runReport(c *ucli.Context) error {
	start := time.Now()
	prog := newProgress("report", 3, c.Bool("quiet") || c.Bool("json"))
	prog.Update(0, "loading the study")
	// Opening a SQLite URL creates the database; a report only reads one.
	if path, ok := strings.CutPrefix(c.String("storage"), "sqlite:///"); ok {
		path, _, _ = strings.Cut(path, "?")
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("storage %s: %v", c.String("storage"), err)
		}
	}
	st, err := storage.Open(c.String("storage"), storage.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	study, err := report.Load(c.Context, st, c.String("study"))
	if errors.Is(err, storage.ErrNoStudy) {
		return fmt.Errorf("%v (tune status --storage %s lists the studies)", err, c.String("storage"))
	}
	if err != nil {
		return err
	}
	prog.Update(1, fmt.Sprintf("%d trials: importance and figures", len(study.Trials)))
	rep, err := report.New(study)
	if err != nil {
		return err
	}
	if err := addRunSections(rep, c.StringSlice("maps"), c.StringSlice("analysis")); err != nil {
		return err
	}
	prog.Update(2, "writing")
	dir := c.String("out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, skipped, err := rep.WriteFiles(dir, c.Bool("seed-files"))
	if err != nil {
		return err
	}
	prog.Done()
	out := reportJSON{Report: files[0], Files: files, Skipped: skipped, Study: study.Name, Trials: len(study.Trials),
		Counts: rep.Data.Counts, Best: rep.Data.Best, Seconds: time.Since(start).Seconds()}
	if c.Bool("json") {
		return printJSON(c.App.Writer, out)
	}
	w := c.App.Writer
	for _, f := range files {
		fmt.Fprintln(w, f)
	}
	for _, s := range skipped {
		fmt.Fprintln(w, "not written:", s)
	}
	info, err := os.Stat(files[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "report: study %q, %d trials (%d complete, %d pruned, %d failed), %s in %.1fs; open file://%s\n",
		study.Name, len(study.Trials), rep.Data.Counts["COMPLETE"], rep.Data.Counts["PRUNED"], rep.Data.Counts["FAIL"],
		sizeText(info.Size()), time.Since(start).Seconds(), absPath(files[0]))
	return nil
}

// addRunSections adds what viz and analyze wrote about runs of the study
// (embedding maps, failure analyses) as sections after the study's own.
func addRunSections(rep *report.Report, maps, analyses []string) error {
	for i, path := range maps {
		v, err := mapview.ReadJSON(path)
		if err != nil {
			return fmt.Errorf("--maps: %w", err)
		}
		s := v.Section()
		s.ID = fmt.Sprintf("%s-%d", s.ID, i+1)
		if len(maps) > 1 {
			s.Title += ": " + v.Title
		}
		if err := rep.Add(s); err != nil {
			return err
		}
	}
	for i, path := range analyses {
		a, err := analysis.ReadJSON(path)
		if err != nil {
			return fmt.Errorf("--analysis: %w", err)
		}
		body, err := a.HTML()
		if err != nil {
			return err
		}
		err = rep.Add(report.Section{
			ID:     fmt.Sprintf("failure-analysis-%d", i+1),
			Title:  fmt.Sprintf("Failure analysis: %s against %s", a.NameB, a.NameA),
			Body:   body,
			Charts: []report.Chart{{Title: fmt.Sprintf("%s per query, %s against %s", a.Metric, a.NameB, a.NameA), Option: a.ScatterOption()}},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func sizeText(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
