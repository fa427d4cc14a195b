package mapview

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/retrieval/embmap"
)

// The corners of WizMap's own IMDB example map (public/data/imdb/grid.json
// in poloclub/wizmap): its grid file says xRange [-8.21585, 12.69462],
// yRange [-7.37839, 13.53208], topic extent [[-8, -7], [24, 25]] and topic
// levels 6 to 10. Ours must agree.
func TestWizMapGeometryMatchesWizMap(t *testing.T) {
	pts := []embmap.Point{{X: -7.8137288093566895, Y: -6.263338565826416}, {X: 12.292498588562012, Y: 12.417027473449707}}
	x0, x1, y0, y1 := squareRange(pts)
	for i, c := range [][2]float64{{x0, -8.215853357315064}, {x1, 12.694623136520386}, {y0, -7.3783937931060795}, {y1, 13.53208270072937}} {
		if math.Abs(c[0]-c[1]) > 1e-9 {
			t.Errorf("range bound %d = %v, WizMap's %v", i, c[0], c[1])
		}
	}
	cx, cy, side := cover(pts)
	if cx != -8 || cy != -7 || side != 32 {
		t.Errorf("cover = (%v, %v) side %v, WizMap's extent [[-8, -7], [24, 25]]", cx, cy, side)
	}
	if lo, hi := topicLevels(side, 12.292498588562012+7.8137288093566895); lo != 6 || hi != 10 {
		t.Errorf("topic levels %d..%d, WizMap's 6..10", lo, hi)
	}
}

// TestDensityIntegratesToOne: the grid is a probability density over the
// padded square (the points lie well inside it).
func TestDensityIntegratesToOne(t *testing.T) {
	var pts []embmap.Point
	for i := range 400 {
		a := float64(i) * 0.1
		pts = append(pts, embmap.Point{X: 10 * math.Cos(a) * float64(i%7) / 7, Y: 10 * math.Sin(a) * float64(i%5) / 5})
	}
	pts = append(pts, embmap.Point{X: -25, Y: -25}, embmap.Point{X: 25, Y: 25}) // widen the square
	x0, x1, y0, y1 := squareRange(pts)
	g := density(pts[:400], x0, x1, y0, y1)
	var sum float64
	for _, row := range g {
		for _, v := range row {
			sum += v
		}
	}
	area := (x1 - x0) / (wizGrid - 1) * (y1 - y0) / (wizGrid - 1)
	if got := sum * area; math.Abs(got-1) > 0.02 {
		t.Fatalf("density integrates to %.4f, want 1", got)
	}
}

func TestWriteWizMap(t *testing.T) {
	v := &View{Items: []Item{
		{ID: "q", Group: GroupQuery, Text: "apple banana"},
		{ID: "a", Group: GroupRelevant, Text: "apple banana cherry"},
		{ID: "b", Group: GroupOther, Text: "apple banana"},
		{ID: "c", Group: GroupOther, Text: "zebra yak"},
		{ID: "d", Group: GroupOther, Text: "zebra yak walrus"},
	}}
	m := Map{Model: "base", Method: UMAP, Points: []embmap.Point{{X: 0.10, Y: 0.11}, {X: 0.12, Y: 0.10}, {X: 0.11, Y: 0.12}, {X: 9.80, Y: 9.82}, {X: 9.83, Y: 9.81}}}
	dir := t.TempDir()
	if err := v.WriteWizMap(m, filepath.Join(dir, "data.ndjson"), filepath.Join(dir, "grid.json")); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(filepath.Join(dir, "data.ndjson"))
	defer f.Close()
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		var row []any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil || len(row) != 5 {
			t.Fatalf("data line %q: %v", sc.Text(), err)
		}
		if row[2] != v.Items[lines].Text || row[4].(float64) != float64([]int{0, 1, 2, 2, 2}[lines]) {
			t.Fatalf("data line %d: %v", lines, row)
		}
		lines++
	}
	if lines != 5 {
		t.Fatalf("%d data lines", lines)
	}
	var grid struct {
		Grid          [][]float64            `json:"grid"`
		GroupNames    []string               `json:"groupNames"`
		GroupGrids    map[string][][]float64 `json:"groupGrids"`
		EmbeddingName string                 `json:"embeddingName"`
		Topic         struct {
			Extent [][]float64         `json:"extent"`
			Data   map[string][][3]any `json:"data"`
		} `json:"topic"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "grid.json"))
	if err := json.Unmarshal(b, &grid); err != nil {
		t.Fatal(err)
	}
	if len(grid.Grid) != wizGrid || len(grid.Grid[0]) != wizGrid || len(grid.GroupGrids) != 3 || grid.EmbeddingName != "base UMAP" {
		t.Fatalf("grid: %d rows, %d groups, name %q", len(grid.Grid), len(grid.GroupGrids), grid.EmbeddingName)
	}
	// At the coarsest level (tiles 1/64 of the 16-wide cover) each group
	// is one tile, named by its words: counts times idf, which is the same
	// for every word here (each is in one tile); ties go by word.
	var coarsest string
	for level := range grid.Topic.Data {
		if coarsest == "" || len(level) < len(coarsest) || (len(level) == len(coarsest) && level < coarsest) {
			coarsest = level
		}
	}
	var names []string
	for _, row := range grid.Topic.Data[coarsest] {
		names = append(names, row[2].(string))
	}
	if got := strings.Join(names, " "); got != "apple-banana-cherry yak-zebra-walrus" {
		t.Fatalf("level %s topics %q", coarsest, got)
	}
}
