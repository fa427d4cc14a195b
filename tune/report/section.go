package report

import (
	"encoding/json"
	"fmt"
	"html/template"
	"regexp"
)

// Section is a block of the report contributed by another package (an
// embedding map, a failure analysis...): a title, an HTML body and charts.
// Add it with Report.Add; it appears after the built-in figures, with a
// link in the page's contents.
//
// Body is trusted markup: build it with html/template so that data is
// escaped. Each Chart's Option is a plain ECharts option (JSON data, no
// functions); the page gives every chart the PNG and SVG buttons and
// replaces any tooltip formatter with one that inserts text only (ECharts
// would insert a formatter's string as HTML). Put data in the option's
// series, never in Body as script.
//
// A package that contributes a section only needs a function such as
//
//	func ReportSection(m *Maps) report.Section
//
// and the caller does rep.Add(mapview.ReportSection(m)) before writing.
type Section struct {
	ID     string // anchor: letters, digits, '-' and '_'
	Title  string
	Body   template.HTML
	Charts []Chart
}

// Chart is one ECharts figure of a Section.
type Chart struct {
	Title  string // the saved image's file name is made from it
	Option any    // marshalled with encoding/json
	Height int    // pixels; 0 means 380
}

type sectionData struct {
	ID     string      `json:"id"`
	Charts []chartData `json:"charts"`
}

type chartData struct {
	Elem   string          `json:"elem"`
	Title  string          `json:"title"`
	Option json.RawMessage `json:"option"`
	Height int             `json:"height"`
}

var sectionID = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Add appends a section; its ID must be new and well formed, and every
// chart's option must marshal to a JSON object.
func (r *Report) Add(s Section) error {
	if !sectionID.MatchString(s.ID) {
		return fmt.Errorf("report section %q: the id must be letters, digits, '-' or '_'", s.ID)
	}
	for _, have := range r.sections {
		if have.ID == s.ID {
			return fmt.Errorf("report section %q: added twice", s.ID)
		}
	}
	sd := sectionData{ID: s.ID, Charts: []chartData{}}
	for i, c := range s.Charts {
		js, err := json.Marshal(c.Option)
		if err != nil {
			return fmt.Errorf("report section %q chart %d: %v", s.ID, i, err)
		}
		if len(js) == 0 || js[0] != '{' {
			return fmt.Errorf("report section %q chart %d: the option is not a JSON object", s.ID, i)
		}
		h := c.Height
		if h <= 0 {
			h = 380
		}
		sd.Charts = append(sd.Charts, chartData{Elem: fmt.Sprintf("chart-sec-%s-%d", s.ID, i), Title: c.Title, Option: js, Height: h})
	}
	r.sections = append(r.sections, s)
	r.Data.Sections = append(r.Data.Sections, sd)
	return nil
}
