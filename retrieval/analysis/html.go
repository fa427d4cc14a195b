package analysis

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/ragtune/ragtune/bindings/safefile"
)

// The fragment is static markup from html/template, which escapes every
// text (query, document, run name) for its context: no script runs, so the
// page needs none.
var fragment = template.Must(template.New("analysis").Funcs(template.FuncMap{
	"f4":     func(x float64) string { return fmt.Sprintf("%.4f", x) },
	"sign":   func(x float64) string { return fmt.Sprintf("%+.4f", x) },
	"p":      func(x float64) string { return fmt.Sprintf("%.3g", x) },
	"rank":   rankText,
	"short":  func(s string) string { return truncate(s, 160) },
	"causes": func() []string { return Causes },
	"style":  func() template.CSS { return template.CSS(style) },
}).Parse(`<style>{{style}}</style>
<div class="fa">
<p>{{.Queries}} judged queries, <b>{{.NameB}}</b> against <b>{{.NameA}}</b> by {{.Metric}}:
{{.Improved}} better, {{.Worsened}} worse, {{.Unchanged}} unchanged.
A query fails when no relevant document is in its top {{.FailureK}}; near-duplicate means a token-set Jaccard similarity of at least {{printf "%.2f" .NearDuplicate}}.</p>
<table class="fa-metrics"><thead><tr><th>metric</th><th>{{.NameA}}</th><th>{{.NameB}}</th><th>diff</th><th>p</th></tr></thead><tbody>
{{range .MainMetrics}}<tr><td>{{.Name}}</td><td>{{f4 .A}}</td><td>{{f4 .B}}</td><td>{{sign .Diff}}</td><td>{{p .P}}</td></tr>
{{end}}</tbody></table>
<p class="fa-note">diff: mean per-query difference ({{.NameB}} minus {{.NameA}}); p: two-sided paired randomisation test. The JSON output has every measure (precision, MAP, hit rate too).</p>
<table class="fa-causes"><thead><tr><th>failures</th>{{range .Failures}}<th>{{.Run}}</th>{{end}}</tr></thead><tbody>
<tr><td>failed queries</td>{{range .Failures}}<td>{{.Failed}}</td>{{end}}</tr>
{{range $c := causes}}<tr><td>{{$c}}</td>{{range $.Failures}}<td>{{index .Causes $c}}</td>{{end}}</tr>
{{end}}</tbody></table>
{{define "list"}}{{range .}}<details class="fa-query"><summary>{{sign .Delta}} ({{f4 .A}} → {{f4 .B}}) <b>{{.ID}}</b>: {{short .Text}}</summary>
<p>relevant: {{range .Relevant}}<span class="fa-rel" title="{{short .Text}}">{{.ID}}</span> {{end}}</p>
<div class="fa-tops"><div><p>first relevant at {{rank .FirstRelevantA}}{{if .CausesA}}; failed: {{range .CausesA}}{{.}} {{end}}{{end}}</p><ol>{{range .TopA}}{{template "hit" .}}{{end}}</ol></div>
<div><p>first relevant at {{rank .FirstRelevantB}}{{if .CausesB}}; failed: {{range .CausesB}}{{.}} {{end}}{{end}}</p><ol>{{range .TopB}}{{template "hit" .}}{{end}}</ol></div></div>
</details>
{{end}}{{end}}{{define "hit"}}<li class="{{if .Relevant}}fa-hit-rel{{else if .NearDuplicate}}fa-hit-dup{{end}}"><b>{{.ID}}</b> {{f4 .Score}}{{if .Relevant}} (relevant){{else if .NearDuplicate}} (near-duplicate of a relevant document){{end}}<br><small>{{short .Text}}</small></li>{{end}}
<h3>Better with {{.NameB}}</h3>
{{if .Better}}{{template "list" .Better}}{{else}}<p>none</p>{{end}}
<h3>Worse with {{.NameB}}</h3>
{{if .Worse}}{{template "list" .Worse}}{{else}}<p>none</p>{{end}}
<p class="fa-note">Left column: {{.NameA}}; right column: {{.NameB}}; top results of each.</p>
</div>`))

// HTML renders the report as an HTML fragment for embedding in a larger
// page: its own <style> (classes prefixed fa) and markup, no script, every
// text escaped.
func (r *Report) HTML() (template.HTML, error) {
	var b bytes.Buffer
	if err := fragment.Execute(&b, r); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil
}

// style is the CSS of the fragment's classes.
const style = `.fa table{border-collapse:collapse;margin:.5em 0}.fa td,.fa th{border:1px solid #ccc;padding:2px 8px;text-align:right}
.fa td:first-child,.fa th:first-child{text-align:left}.fa-note{color:#555;font-size:90%}
.fa-query{margin:.3em 0}.fa-tops{display:flex;gap:2em}.fa-tops>div{flex:1}.fa-rel{background:#e6f4ea;padding:0 3px}
.fa-hit-rel{background:#e6f4ea}.fa-hit-dup{background:#fff4d6}`

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Failure analysis: {{.R.NameB}} against {{.R.NameA}}</title>
<style>body{font-family:sans-serif;margin:1.5em;max-width:80em}</style></head>
<body><h1>Failure analysis: {{.R.NameB}} against {{.R.NameA}}</h1>
{{.Body}}
</body></html>
`))

// WritePage writes the report as a self-contained HTML page.
func (r *Report) WritePage(path string) error {
	body, err := r.HTML()
	if err != nil {
		return err
	}
	return safefile.Write(path, func(w io.Writer) error {
		return page.Execute(w, struct {
			R    *Report
			Body template.HTML
		}{r, body})
	})
}

// ScatterOption is an ECharts option plotting every query's metric in run
// A (x) against run B (y), with the diagonal: points above it got better.
// It holds data only (no functions), for a report section's chart.
func (r *Report) ScatterOption() map[string]any {
	pts := make([][3]any, len(r.PerQuery))
	for i, q := range r.PerQuery {
		pts[i] = [3]any{q.A, q.B, q.ID}
	}
	axis := func(name string) map[string]any {
		return map[string]any{"type": "value", "min": 0, "max": 1, "name": name + " " + r.Metric, "nameLocation": "middle", "nameGap": 28}
	}
	return map[string]any{
		"xAxis": axis(r.NameA),
		"yAxis": axis(r.NameB),
		"series": []any{
			map[string]any{"type": "scatter", "name": "queries", "data": pts, "symbolSize": 7, "encode": map[string]any{"x": 0, "y": 1, "tooltip": []int{2, 0, 1}}},
			map[string]any{"type": "line", "name": "no change", "data": [][2]float64{{0, 0}, {1, 1}}, "symbol": "none", "lineStyle": map[string]any{"type": "dashed", "color": "#999"}},
		},
	}
}

// MainMetrics are the nDCG, recall and MRR rows of Metrics, the ones
// the terminal table and the HTML show.
func (r *Report) MainMetrics() []MetricDelta {
	var out []MetricDelta
	for _, m := range r.Metrics {
		if strings.HasPrefix(m.Name, "ndcg@") || strings.HasPrefix(m.Name, "recall@") || strings.HasPrefix(m.Name, "mrr@") {
			out = append(out, m)
		}
	}
	return out
}

func rankText(r int) string {
	if r == 0 {
		return "none (not in the run)"
	}
	return fmt.Sprint(r)
}

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
