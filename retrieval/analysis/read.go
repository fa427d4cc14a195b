package analysis

import (
	"encoding/json"
	"fmt"
	"os"
)

// ReadJSON reads a report written as JSON (analyze --out's analysis.json),
// for a page that shows it again, such as the study report.
func ReadJSON(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Metric == "" || r.NameA == "" || r.NameB == "" {
		return nil, fmt.Errorf("%s: not a failure analysis (no metric or run names)", path)
	}
	return &r, nil
}
