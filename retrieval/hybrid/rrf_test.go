package hybrid

import (
	"math"
	"testing"
)

func TestRRF(t *testing.T) {
	got := RRF([][]string{{"a", "b", "c"}, {"c", "a", "d", "a"}}, 60, 3)
	// a: 1/61 + 1/62; c: 1/63 + 1/61; b: 1/62; d: 1/63.
	want := []Fused{{"a", 1.0/61 + 1.0/62}, {"c", 1.0/63 + 1.0/61}, {"b", 1.0 / 62}}
	if len(got) != len(want) {
		t.Fatalf("RRF = %+v", got)
	}
	for i := range want {
		if got[i].ID != want[i].ID || math.Abs(got[i].Score-want[i].Score) > 1e-15 {
			t.Fatalf("rank %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Equal fused scores order by id.
	tie := RRF([][]string{{"y"}, {"x"}}, 60, 0)
	if tie[0].ID != "x" || tie[1].ID != "y" {
		t.Fatalf("tie order %+v", tie)
	}
}
