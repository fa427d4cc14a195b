package mapview

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// ReadJSON reads a view written by WriteJSON (viz's maps.json), checking
// that every map has one finite point per item and that links name items,
// so a damaged file is an error rather than a broken page.
func ReadJSON(path string) (*View, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v View
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(v.Maps) == 0 {
		return nil, fmt.Errorf("%s: no maps", path)
	}
	for i, m := range v.Maps {
		if len(m.Points) != len(v.Items) {
			return nil, fmt.Errorf("%s: maps[%d] (%s %s) has %d points for %d items", path, i, m.Model, m.Method, len(m.Points), len(v.Items))
		}
		for j, p := range m.Points {
			if math.IsNaN(p.X) || math.IsInf(p.X, 0) || math.IsNaN(p.Y) || math.IsInf(p.Y, 0) {
				return nil, fmt.Errorf("%s: maps[%d].points[%d] is not finite", path, i, j)
			}
		}
	}
	for i, l := range v.Links {
		if l[0] < 0 || l[0] >= len(v.Items) || l[1] < 0 || l[1] >= len(v.Items) {
			return nil, fmt.Errorf("%s: links[%d] names item %d or %d of %d", path, i, l[0], l[1], len(v.Items))
		}
	}
	return &v, nil
}
