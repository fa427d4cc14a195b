package mapview

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/retrieval/bm25"
	"github.com/ragtune/ragtune/retrieval/embmap"
)

// WizMap's files, for users who browse maps with WizMap (poloclub/wizmap):
// a data file with one JSON array [x, y, text, time, label] a line, and a
// grid file with the density of the points on a 200 x 200 grid (one per
// group too) and keyword "topics" of square tiles at the zoom levels WizMap
// shows. The formats follow WizMap's notebook helper (generate_grid_dict,
// generate_data_list); the computations are ours.

const (
	wizGrid      = 200  // grid resolution
	wizZoom      = 30   // deepest zoom WizMap allows
	wizSVG       = 1000 // WizMap's nominal view size in pixels
	wizTileWidth = 35   // ideal on-screen tile width in pixels
	wizKernelCut = 4.0  // the Gaussian kernel is summed within 4 bandwidths
	wizRound     = 1e4  // densities are written with 4 decimals
)

// groupOrder numbers the groups as WizMap's labels.
var groupOrder = []string{GroupQuery, GroupRelevant, GroupOther}

// WriteWizMap writes map m of the view as WizMap's data (ndjson) and grid
// (JSON) files.
func (v *View) WriteWizMap(m Map, dataPath, gridPath string) error {
	label := map[string]int{}
	for i, g := range groupOrder {
		label[g] = i
	}
	err := safefile.Write(dataPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for i, it := range v.Items {
			if err := enc.Encode([]any{m.Points[i].X, m.Points[i].Y, it.Text, "", label[it.Group]}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	grid := wizGridDict(m.Points, v.Items)
	grid["embeddingName"] = fmt.Sprintf("%s %s", m.Model, strings.ToUpper(m.Method))
	return safefile.Write(gridPath, func(w io.Writer) error { return json.NewEncoder(w).Encode(grid) })
}

// squareRange pads the points' bounding box by 1/50 of its longer side and
// makes it square around the data, as WizMap's contour step does.
func squareRange(pts []embmap.Point) (x0, x1, y0, y1 float64) {
	x0, y0, x1, y1 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		x0, x1 = math.Min(x0, p.X), math.Max(x1, p.X)
		y0, y1 = math.Min(y0, p.Y), math.Max(y1, p.Y)
	}
	xg, yg := x1-x0, y1-y0
	if xg > yg {
		x0, x1 = x0-xg/50, x1+xg/50
		pad := (x1 - x0 - yg) / 2
		y0, y1 = y0-pad, y1+pad
	} else {
		y0, y1 = y0-yg/50, y1+yg/50
		pad := (y1 - y0 - xg) / 2
		x0, x1 = x0-pad, x1+pad
	}
	return
}

func wizGridDict(pts []embmap.Point, items []Item) map[string]any {
	x0, x1, y0, y1 := squareRange(pts)
	d := map[string]any{
		"grid":           density(pts, x0, x1, y0, y1),
		"xRange":         []float64{x0, x1},
		"yRange":         []float64{y0, y1},
		"padded":         true,
		"sampleSize":     len(pts),
		"totalPointSize": len(pts),
	}
	groupGrids, groupSizes := map[string]any{}, map[string]int{}
	for _, g := range groupOrder {
		var sub []embmap.Point
		for i, it := range items {
			if it.Group == g {
				sub = append(sub, pts[i])
			}
		}
		groupGrids[g] = density(sub, x0, x1, y0, y1)
		groupSizes[g] = len(sub)
	}
	d["groupGrids"], d["groupTotalPointSizes"], d["groupNames"] = groupGrids, groupSizes, groupOrder
	texts := make([]string, len(items))
	for i, it := range items {
		texts[i] = it.Text
	}
	d["topic"] = topics(pts, texts)
	return d
}

// density is the Gaussian kernel density of pts on a wizGrid x wizGrid grid
// over [x0, x1] x [y0, y1] (grid[row y][column x]), bandwidth by Silverman's
// rule for two dimensions, n^(−1/6), in map units (as scikit-learn's
// KernelDensity gets it). Kernels are cut at wizKernelCut bandwidths.
func density(pts []embmap.Point, x0, x1, y0, y1 float64) [][]float64 {
	grid := make([][]float64, wizGrid)
	for i := range grid {
		grid[i] = make([]float64, wizGrid)
	}
	if len(pts) == 0 {
		return grid
	}
	bw := math.Pow(float64(len(pts)), -1.0/6)
	dx, dy := (x1-x0)/(wizGrid-1), (y1-y0)/(wizGrid-1)
	norm := 1 / (2 * math.Pi * bw * bw * float64(len(pts)))
	reach := wizKernelCut * bw
	for _, p := range pts {
		c0, c1 := max(0, int(math.Ceil((p.X-reach-x0)/dx))), min(wizGrid-1, int(math.Floor((p.X+reach-x0)/dx)))
		r0, r1 := max(0, int(math.Ceil((p.Y-reach-y0)/dy))), min(wizGrid-1, int(math.Floor((p.Y+reach-y0)/dy)))
		for r := r0; r <= r1; r++ {
			gy := y0 + float64(r)*dy - p.Y
			for c := c0; c <= c1; c++ {
				gx := x0 + float64(c)*dx - p.X
				grid[r][c] += norm * math.Exp(-(gx*gx+gy*gy)/(2*bw*bw))
			}
		}
	}
	for _, row := range grid {
		for c, v := range row {
			row[c] = math.Round(v*wizRound) / wizRound
		}
	}
	return grid
}

// cover is the square, power-of-two-sided region that a d3 quadtree grows
// to hold the points: from the lower corner's floor, doubled towards each
// point it does not hold yet.
func cover(pts []embmap.Point) (x0, y0, side float64) {
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		minX, minY = math.Min(minX, p.X), math.Min(minY, p.Y)
		maxX, maxY = math.Max(maxX, p.X), math.Max(maxY, p.Y)
	}
	x0, y0, side = math.Floor(minX), math.Floor(minY), 1
	x1, y1 := x0+side, y0+side
	for _, q := range [][2]float64{{minX, minY}, {maxX, maxY}} {
		x, y := q[0], q[1]
		for x0 > x || x >= x1 || y0 > y || y >= y1 {
			side *= 2
			switch {
			case y < y0 && x < x0:
				x0, y0 = x1-side, y1-side
			case y < y0:
				x1, y0 = x0+side, y1-side
			case x < x0:
				x0, y1 = x1-side, y0+side
			default:
				x1, y1 = x0+side, y0+side
			}
		}
	}
	return x0, y0, side
}

// topicLevels picks the quadtree levels whose tiles are closest to
// wizTileWidth pixels at zoom 1 and at the deepest zoom (every half step
// between), as WizMap's helper does.
func topicLevels(side, worldLength float64) (lo, hi int) {
	lo, hi = 21, 0
	scale := side / worldLength
	for zoom := 1.0; zoom <= wizZoom; zoom += 0.5 {
		best, bestDiff := 1, math.Inf(1)
		for l := 1; l <= 20; l++ {
			diff := math.Abs(zoom*wizSVG*scale/math.Exp2(float64(l)) - wizTileWidth)
			if diff < bestDiff {
				best, bestDiff = l, diff
			}
		}
		lo, hi = min(lo, best), max(hi, best)
	}
	return lo, hi
}

// topics names every non-empty tile at each selected level by its four
// highest TF-IDF words (tiles as documents: raw counts, smooth idf
// ln((1+n)/(1+df)) + 1, rows L2-normalised, as scikit-learn's
// TfidfTransformer; BM25's tokenizer without English stopwords).
func topics(pts []embmap.Point, texts []string) map[string]any {
	x0, y0, side := cover(pts)
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		minX, minY = math.Min(minX, p.X), math.Min(minY, p.Y)
		maxX, maxY = math.Max(maxX, p.X), math.Max(maxY, p.Y)
	}
	lo, hi := topicLevels(side, math.Max(maxX-minX, maxY-minY))
	tok := bm25.NewTokenizer(true)
	words := make([][]string, len(texts))
	for i, t := range texts {
		words[i] = tok.Tokens(t)
	}
	data := map[string]any{}
	for level := lo; level <= hi; level++ {
		step := side / math.Exp2(float64(level))
		tiles := map[[2]int]map[string]float64{}
		var keys [][2]int
		for i, p := range pts {
			k := [2]int{int((p.X - x0) / step), int((p.Y - y0) / step)}
			if tiles[k] == nil {
				tiles[k] = map[string]float64{}
				keys = append(keys, k)
			}
			for _, w := range words[i] {
				tiles[k][w]++
			}
		}
		sort.Slice(keys, func(a, b int) bool {
			if keys[a][0] != keys[b][0] {
				return keys[a][0] < keys[b][0]
			}
			return keys[a][1] < keys[b][1]
		})
		df := map[string]float64{}
		for _, counts := range tiles {
			for w := range counts {
				df[w]++
			}
		}
		n := float64(len(tiles))
		var rows [][]any
		for _, k := range keys {
			cx, cy := x0+(float64(k[0])+0.5)*step, y0+(float64(k[1])+0.5)*step
			rows = append(rows, []any{round3(cx), round3(cy), topicName(tiles[k], df, n)})
		}
		data[fmt.Sprint(level)] = rows
	}
	return map[string]any{
		"extent": [][]float64{{x0, y0}, {x0 + side, y0 + side}},
		"data":   data,
		"range":  []float64{minX, minY, maxX, maxY},
	}
}

// topicName joins a tile's four best words by TF-IDF with "-" (ties by
// word). Row normalisation does not change the order within a tile.
func topicName(counts, df map[string]float64, n float64) string {
	type scored struct {
		w string
		s float64
	}
	var ws []scored
	for w, c := range counts {
		ws = append(ws, scored{w, c * (math.Log((1+n)/(1+df[w])) + 1)})
	}
	sort.Slice(ws, func(a, b int) bool {
		if ws[a].s != ws[b].s {
			return ws[a].s > ws[b].s
		}
		return ws[a].w < ws[b].w
	})
	var names []string
	for _, x := range ws[:min(4, len(ws))] {
		names = append(names, x.w)
	}
	return strings.Join(names, "-")
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
