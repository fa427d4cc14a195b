package mapview

import "github.com/ragtune/ragtune/tune/report"

// Section is the view as a section of the study report: the notes and
// trustworthiness list as its body, one scatter chart per map.
func (v *View) Section() report.Section {
	s := report.Section{ID: "embedding-maps", Title: "Embedding maps", Body: v.Fragment()}
	for _, c := range v.Charts() {
		s.Charts = append(s.Charts, report.Chart{Title: c.Title, Option: c.Option, Height: 420})
	}
	return s
}
