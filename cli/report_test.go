package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A study made by `tune run` becomes a report: --json, the seed files, the
// path printed, and a clear error for a study that does not exist.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:///" + filepath.Join(dir, "q.db")
	sweep := filepath.Join("..", "scripts", "sweeps", "quadratic.yaml")
	if _, stderr, err := runApp(t, "tune", "run", "--config", sweep, "--storage", db, "--n-trials", "8", "--quiet"); err != nil {
		t.Fatalf("tune run: %v\n%s", err, stderr)
	}
	out := filepath.Join(dir, "rep")
	stdout, _, err := runApp(t, "report", "--storage", db, "--study", "quadratic", "--out", out, "--seed-files", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res reportJSON
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output %q: %v", stdout, err)
	}
	if res.Report != filepath.Join(out, "report.html") || len(res.Files) != 7 || res.Trials != 8 || len(res.Best) != 1 {
		t.Fatalf("report --json: %+v", res)
	}
	for _, f := range res.Files {
		if info, err := os.Stat(f); err != nil || info.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	page, err := os.ReadFile(res.Report)
	if err != nil || !strings.Contains(string(page), "Study <q>quadratic</q>") {
		t.Fatalf("report.html: %v", err)
	}
	// Flags in any order; the text output names the file.
	stdout, _, err = runApp(t, "report", "--out", filepath.Join(dir, "rep2"), "--study", "quadratic", "--storage", db)
	if err != nil || !strings.HasPrefix(stdout, filepath.Join(dir, "rep2", "report.html")+"\n") || !strings.Contains(stdout, "8 trials") {
		t.Fatalf("report: %v\n%s", err, stdout)
	}
	if _, _, err := runApp(t, "report", "--storage", db, "--study", "nope", "--out", out); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown study: %v", err)
	}
	// A missing SQLite file is an error, not a new empty database.
	missing := filepath.Join(dir, "missing.db")
	if _, _, err := runApp(t, "report", "--storage", "sqlite:///"+missing, "--study", "q", "--out", out); err == nil || !strings.Contains(err.Error(), "missing.db") {
		t.Errorf("missing database: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("report created the missing database")
	}
}
