package mapview

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/tune/report/assets"
)

//go:embed page.html
var pageHTML string

//go:embed page.js
var pageJS string

var pageTemplate = template.Must(template.New("viz").Parse(pageHTML))

// PageTextLimit bounds each item's text in the page (hover shows it cut).
const PageTextLimit = 400

// pageData is the view as the page reads it: texts cut to PageTextLimit.
func (v *View) pageData() ([]byte, error) {
	short := *v
	short.Items = make([]Item, len(v.Items))
	for i, it := range v.Items {
		it.Text = cut(it.Text, PageTextLimit)
		short.Items[i] = it
	}
	// encoding/json writes <, > and & as \u003c, \u003e and \u0026, so
	// nothing in the data can close the script element or open a comment.
	b, err := json.Marshal(&short)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(string(b), "<>") {
		return nil, fmt.Errorf("mapview: page data holds a raw angle bracket")
	}
	return b, nil
}

// WriteHTML writes the view as one self-contained page: ECharts, the data
// and the script inline, and a Content-Security-Policy that allows no
// network access.
func (v *View) WriteHTML(path string) error {
	data, err := v.pageData()
	if err != nil {
		return err
	}
	return safefile.Write(path, func(w io.Writer) error {
		return pageTemplate.Execute(w, map[string]any{
			"Title":   v.Title,
			"Notes":   v.Notes,
			"Data":    template.JS(data),
			"ECharts": template.JS(assets.ECharts),
			"PageJS":  template.JS(pageJS),
		})
	})
}

// Chart is one map as a plain ECharts option (data only, no functions),
// for a section of the study report.
type Chart struct {
	Title  string
	Option map[string]any
}

// Charts returns every map as a scatter option: one series per group, each
// point [x, y, id]. Hover text and query links need viz.html's script;
// the report links to it.
func (v *View) Charts() []Chart {
	var out []Chart
	for _, m := range v.Maps {
		var series []any
		for _, g := range []string{GroupOther, GroupRelevant, GroupQuery} {
			pts := [][3]any{}
			for i, it := range v.Items {
				if it.Group == g {
					pts = append(pts, [3]any{m.Points[i].X, m.Points[i].Y, it.ID})
				}
			}
			series = append(series, map[string]any{"type": "scatter", "name": g, "data": pts, "symbolSize": 5})
		}
		axis := map[string]any{"type": "value", "scale": true, "axisLabel": map[string]any{"show": false}, "splitLine": map[string]any{"show": false}}
		out = append(out, Chart{
			Title: fmt.Sprintf("%s %s map", m.Model, strings.ToUpper(m.Method)),
			Option: map[string]any{
				"legend": map[string]any{"top": 0}, "xAxis": axis, "yAxis": axis, "series": series,
				"color": []string{"#adb5bd", "#2f9e44", "#d9480f"},
			},
		})
	}
	return out
}

// Fragment is the HTML that goes with Charts in a report section: how the
// items were chosen and how well each map keeps neighbourhoods.
func (v *View) Fragment() template.HTML {
	var b strings.Builder
	for _, n := range v.Notes {
		b.WriteString("<p>" + template.HTMLEscapeString(n) + "</p>")
	}
	b.WriteString("<ul>")
	for _, m := range v.Maps {
		fmt.Fprintf(&b, "<li>%s %s: trustworthiness(10) %.3f</li>", template.HTMLEscapeString(m.Model), template.HTMLEscapeString(m.Method), m.Trustworthiness)
	}
	b.WriteString("</ul>")
	return template.HTML(b.String())
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
