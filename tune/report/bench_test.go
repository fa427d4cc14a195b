package report

import (
	"bytes"
	"testing"
)

// BenchmarkReport1000 builds the whole report of a 1,000-trial study:
// loading it from SQLite, fANOVA and MDI importance, and writing the page.
func BenchmarkReport1000(b *testing.B) {
	url, _ := writeStudy(b, b.TempDir(), "big", studySpec{n: 1000, baseline: true})
	var page bytes.Buffer
	for b.Loop() {
		r, err := New(loadStudy(b, url, "big"))
		if err != nil {
			b.Fatal(err)
		}
		page.Reset()
		if err := r.WriteHTML(&page); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(page.Len())/(1<<20), "MiB/page")
}
