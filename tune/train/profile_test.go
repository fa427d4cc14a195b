package train

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/tune/model"
)

// TestProfileBooksEveryNode profiles one LoRA step of a tiny bert, whole
// graph and with recomputation: the profile's FLOPs are the graphs' own
// count, its rows share out the whole step, and every part of the model
// the issue names shows up in the forward and the backward pass.
func TestProfileBooksEveryNode(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	path := writeTiny(t, "bert", gguf.F32, append(queries, docs...))
	for _, recompute := range []bool{false, true} {
		name := map[bool]string{false: "whole", true: "recompute"}[recompute]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, path, model.LoadOptions{}, LossConfig{}, loraParams(0.1, "attn_q", "attn_v"))
			defer f.close()
			f.step.Recompute = recompute
			if _, err := f.step.Accumulate(f.batch, 1); err != nil { // builds the graphs
				t.Fatal(err)
			}
			p := NewProfile()
			f.step.Profile = p
			p.StartStep()
			if _, err := f.step.Accumulate(f.batch, 1); err != nil {
				t.Fatal(err)
			}
			p.EndStep()
			p.Finish()
			if rel := math.Abs(p.FLOPs-f.step.LastFLOPs) / f.step.LastFLOPs; rel > 1e-9 {
				t.Errorf("profile counts %.6g FLOPs, the graphs %.6g", p.FLOPs, f.step.LastFLOPs)
			}
			for _, rows := range [][]ProfileRow{p.Phases, p.ByPart, p.ByOp} {
				share := 0.0
				for _, r := range rows {
					share += r.Share
				}
				if math.Abs(share-1) > 1e-9 {
					t.Errorf("shares add up to %.6f, want 1", share)
				}
			}
			parts := map[string]float64{}
			for _, r := range p.ByPart {
				parts[r.Phase+"/"+r.Name] += r.FLOPs
				if r.Name == partOther {
					t.Errorf("%d %s nodes are booked to no part of the model", r.Nodes, r.Phase)
				}
			}
			for _, phase := range []string{phaseForward, phaseBackward} {
				for _, part := range []string{partProjection, partFFN, partAttention, partSoftmax, partNorm, partLoRA, partPooling, partLoss} {
					if parts[phase+"/"+part] <= 0 {
						t.Errorf("no %s FLOPs booked to %q", phase, part)
					}
				}
			}
			if _, ok := parts[phaseOptimizer+"/gradient download"]; !ok {
				t.Error("the gradient download is not booked")
			}
			var buf bytes.Buffer
			p.WriteTables(&buf)
			for _, want := range []string{"part of the model", "ggml op", "MUL_MAT", "softmax", "GFLOP/s"} {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, buf.String())
				}
			}
			t.Logf("\n%s", buf.String())
		})
	}
}
