package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/tune/report/assets"
)

//go:embed page.js
var pageJS string

//go:embed page.css
var pageCSS string

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// Report is a study's data plus the sections other packages added.
type Report struct {
	Data     *Data
	sections []Section
}

// New extracts a study's data into a report.
func New(s Study) (*Report, error) {
	d, err := Extract(s)
	if err != nil {
		return nil, err
	}
	return &Report{Data: d}, nil
}

// Figures are the built-in figures, in page order. WriteHTML draws a subset.
var Figures = []string{"pareto", "history", "curves", "importance-fanova", "importance-mdi", "interactions", "parallel", "slices", "valtest", "table"}

// SeedFiles maps the original work's file names to the figure each shows
// (fanova_interactions_heatmap.png is drawn in Go, see heatmap.go).
var SeedFiles = map[string]string{
	"pareto_ndcg_flops.html":       "pareto",
	"history.html":                 "history",
	"param_importance.html":        "importance-mdi",
	"param_importance_fanova.html": "importance-fanova",
	"parallel_coord.html":          "parallel",
}

// HeatmapFile is the seed file of the fANOVA interaction heatmap.
const HeatmapFile = "fanova_interactions_heatmap.png"

type pageView struct {
	Title    string
	Header   []string
	show     map[string]bool
	Full     bool
	Data     *Data
	Sections []Section
	Version  string
	License  string
}

func (v pageView) Show(fig string) bool { return v.show[fig] }

// WriteHTML writes the self-contained page with the given figures (all of
// them, the header and the added sections when figures is empty).
func (r *Report) WriteHTML(w io.Writer, figures ...string) error {
	v := pageView{Title: "ragtune study report: " + r.Data.Study, Data: r.Data, Version: assets.EChartsVersion,
		License: assets.EChartsLicense + "\n" + assets.EChartsNotice, show: map[string]bool{}}
	data := *r.Data
	if len(figures) == 0 {
		figures, v.Full, v.Sections = Figures, true, r.sections
		v.Header = HeaderLines(r.Data)
	} else {
		data.Sections = []sectionData{}
	}
	for _, f := range figures {
		if !contains(Figures, f) {
			return fmt.Errorf("report: unknown figure %q", f)
		}
		v.show[f] = true
	}
	v.show["valtest"] = v.show["valtest"] && len(r.Data.ValTest) > 0
	js, err := json.Marshal(&data)
	if err != nil {
		return fmt.Errorf("report: %v", err)
	}
	// encoding/json writes <, > and & as \u003c, \u003e and \u0026, so the
	// data cannot end its <script> element or open a comment; check anyway.
	if bytes.Contains(js, []byte("<")) {
		return fmt.Errorf("report: the data's JSON holds a raw '<'")
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		return err
	}
	// The scripts go in verbatim: html/template would escape them.
	page := buf.String()
	at := strings.LastIndex(page, "</body>")
	if at < 0 {
		return fmt.Errorf("report: the page template lacks </body>")
	}
	for _, s := range []string{assets.ECharts, pageJS, pageCSS} {
		if strings.Contains(strings.ToLower(s), "</script") || strings.Contains(strings.ToLower(s), "</style") {
			return fmt.Errorf("report: an embedded asset holds a closing tag")
		}
	}
	head := strings.Index(page, "</head>")
	if head < 0 || head > at {
		return fmt.Errorf("report: the page template lacks </head>")
	}
	var out strings.Builder
	out.WriteString(page[:head])
	out.WriteString("<style>")
	out.WriteString(pageCSS)
	out.WriteString("</style>\n")
	out.WriteString(page[head:at])
	out.WriteString(`<script type="application/json" id="ragtune-data">`)
	out.Write(js)
	out.WriteString("</script>\n<script>")
	out.WriteString(assets.ECharts)
	out.WriteString("</script>\n<script>")
	out.WriteString(pageJS)
	out.WriteString("</script>\n")
	out.WriteString(page[at:])
	_, err = io.WriteString(w, out.String())
	return err
}

// WriteFiles writes dir/report.html and, with seed, the original work's
// files; it returns the paths written and why any seed file was left out
// (a study too small for fANOVA has no heatmap). Each file is written
// atomically.
func (r *Report) WriteFiles(dir string, seed bool) (written, skipped []string, err error) {
	write := func(name string, figures ...string) error {
		path := filepath.Join(dir, name)
		if err := safefile.Write(path, func(w io.Writer) error { return r.WriteHTML(w, figures...) }); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		written = append(written, path)
		return nil
	}
	if err := write("report.html"); err != nil {
		return written, nil, err
	}
	if !seed {
		return written, nil, nil
	}
	names := make([]string, 0, len(SeedFiles))
	for name := range SeedFiles {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := write(name, SeedFiles[name]); err != nil {
			return written, nil, err
		}
	}
	if im := r.Data.Importance; im == nil || im.Interactions == nil {
		reason := "no complete trial yet"
		if im != nil {
			reason = im.FanovaError
		}
		return written, []string{HeatmapFile + ": " + reason}, nil
	}
	path := filepath.Join(dir, HeatmapFile)
	if err := safefile.Write(path, func(w io.Writer) error { return WriteHeatmapPNG(w, r.Data) }); err != nil {
		return written, nil, fmt.Errorf("%s: %v", path, err)
	}
	return append(written, path), nil, nil
}
