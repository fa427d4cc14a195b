package train

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ragtune/ragtune/bindings"
)

// Profile is where the time of training steps goes: every computing node
// of the step's graphs timed by the backend scheduler (see
// bindings.Backend.ComputeTimed), by ggml op and by part of the model, for
// the forward pass, the backward pass and the optimizer (on the device, its
// graphs' nodes; on the host, the Go loop and the copies), with FLOPs.
// Figures are per step, averaged over the profiled steps.
type Profile struct {
	Steps   int          `json:"steps"`
	Seconds float64      `json:"step_seconds"` // wall time of one step
	FLOPs   float64      `json:"step_flops"`
	Phases  []ProfileRow `json:"phases"`
	ByOp    []ProfileRow `json:"by_op"`
	ByPart  []ProfileRow `json:"by_part"`

	rows    map[[3]string]*ProfileRow // (table, phase, name)
	classes map[*bindings.Graph]map[bindings.Tensor]nodeClass
	start   time.Time
	wall    time.Duration
}

// ProfileRow is one line of a profile table.
type ProfileRow struct {
	Phase   string  `json:"phase"` // forward, backward, optimizer, host
	Name    string  `json:"name"`
	Nodes   int     `json:"nodes"`
	Seconds float64 `json:"seconds"`
	FLOPs   float64 `json:"flops"`
	GFLOPS  float64 `json:"gflop_per_s"`
	Share   float64 `json:"share"` // of the step's wall time
}

// Phases and the parts of the model a node's time is booked to.
const (
	phaseForward   = "forward"
	phaseBackward  = "backward"
	phaseOptimizer = "optimizer"
	phaseHost      = "host"

	partProjection = "projections (q, k, v, output)"
	partFFN        = "FFN (up, down, gate, activation)"
	partAttention  = "attention products (QKᵀ, ·V)"
	partSoftmax    = "softmax"
	partNorm       = "norms"
	partResidual   = "residual adds"
	partLoRA       = "LoRA factors (and dropout)"
	partPosition   = "rotary positions"
	partInput      = "input embedding"
	partPooling    = "pooling"
	partLoss       = "loss"
	partCopy       = "copies and transposes"
	partOther      = "other"
)

// NewProfile starts an empty profile.
func NewProfile() *Profile {
	return &Profile{rows: map[[3]string]*ProfileRow{}, classes: map[*bindings.Graph]map[bindings.Tensor]nodeClass{}}
}

// StartStep and EndStep bracket one profiled optimizer step.
func (p *Profile) StartStep() { p.start = time.Now() }

// EndStep closes the step StartStep opened.
func (p *Profile) EndStep() {
	p.wall += time.Since(p.start)
	p.Steps++
}

func (p *Profile) add(table, phase, name string, sec, flops float64, nodes int) {
	k := [3]string{table, phase, name}
	r := p.rows[k]
	if r == nil {
		r = &ProfileRow{Phase: phase, Name: name}
		p.rows[k] = r
	}
	r.Seconds += sec
	r.FLOPs += flops
	r.Nodes += nodes
}

// host books time spent outside ggml's graphs (gradient download, AdamW).
func (p *Profile) host(phase, name string, d time.Duration) {
	for _, table := range []string{"op", "part"} {
		p.add(table, phase, name, d.Seconds(), 0, 0)
	}
}

// compute computes g on be, booking each node's time when profiling.
func (p *Profile) compute(be *bindings.Backend, g *bindings.Graph) error {
	if p == nil {
		return be.Compute(g)
	}
	times, err := be.ComputeTimed(g)
	if err != nil {
		return err
	}
	classes := p.classes[g]
	if classes == nil {
		classes = classify(g)
		p.classes[g] = classes
	}
	for _, t := range times {
		c := classes[t.Node]
		part := c.part
		if t.Node.IsCopy() {
			part = partCopy
		}
		p.add("op", c.phase, t.Node.OpDesc(), t.Seconds, c.flops, 1)
		p.add("part", c.phase, part, t.Seconds, c.flops, 1)
	}
	return nil
}

// since books the time from t0 to now under the host phase and name, when
// profiling.
func (p *Profile) since(phase, name string, t0 time.Time) {
	if p != nil {
		p.host(phase, name, time.Since(t0))
	}
}

// Finish turns the sums into per-step tables, largest first; the step's
// time outside the graphs and the booked host work is a row of its own.
func (p *Profile) Finish() {
	if p.Steps == 0 {
		return
	}
	n := float64(p.Steps)
	p.Seconds = p.wall.Seconds() / n
	p.ByOp, p.ByPart, p.Phases = nil, nil, nil
	phases := map[string]*ProfileRow{}
	for k, r := range p.rows {
		row := *r
		row.Seconds /= n
		row.FLOPs /= n
		row.Nodes = int(float64(row.Nodes)/n + 0.5)
		if k[0] == "op" {
			p.ByOp = append(p.ByOp, row)
			ph := phases[row.Phase]
			if ph == nil {
				ph = &ProfileRow{Phase: row.Phase, Name: "all"}
				phases[row.Phase] = ph
			}
			ph.Seconds += row.Seconds
			ph.FLOPs += row.FLOPs
			ph.Nodes += row.Nodes
		} else {
			p.ByPart = append(p.ByPart, row)
		}
	}
	booked := 0.0
	p.FLOPs = 0
	for _, ph := range phases {
		booked += ph.Seconds
		p.FLOPs += ph.FLOPs
		p.Phases = append(p.Phases, *ph)
	}
	rest := ProfileRow{Phase: phaseHost, Name: "inputs, dropout masks, graph set-up", Seconds: max(p.Seconds-booked, 0)}
	p.ByOp = append(p.ByOp, rest)
	p.ByPart = append(p.ByPart, rest)
	p.Phases = append(p.Phases, rest)
	for _, rows := range [][]ProfileRow{p.Phases, p.ByOp, p.ByPart} {
		for i := range rows {
			r := &rows[i]
			if r.Seconds > 0 {
				r.GFLOPS = r.FLOPs / r.Seconds / 1e9
			}
			if p.Seconds > 0 {
				r.Share = r.Seconds / p.Seconds
			}
		}
	}
	order := map[string]int{phaseForward: 0, phaseBackward: 1, phaseOptimizer: 2, phaseHost: 3}
	byTime := func(a, b ProfileRow) int {
		if c := cmp.Compare(order[a.Phase], order[b.Phase]); c != 0 {
			return c
		}
		return cmp.Compare(b.Seconds, a.Seconds)
	}
	slices.SortFunc(p.Phases, byTime)
	slices.SortFunc(p.ByOp, byTime)
	slices.SortFunc(p.ByPart, byTime)
}

// WriteTables prints the phase, part and op tables.
func (p *Profile) WriteTables(w io.Writer) {
	fmt.Fprintf(w, "profile: %d step(s), %.3f s/step, %.1f GFLOP/step, %.1f GFLOP/s\n",
		p.Steps, p.Seconds, p.FLOPs/1e9, p.FLOPs/max(p.Seconds, 1e-9)/1e9)
	for _, t := range []struct {
		title string
		rows  []ProfileRow
	}{{"phase", p.Phases}, {"part of the model", p.ByPart}, {"ggml op", p.ByOp}} {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "phase\t%s\tnodes\tms/step\tshare\tGFLOP\tGFLOP/s\t\n", t.title)
		for _, r := range t.rows {
			gf, rate := "-", "-"
			if r.FLOPs > 0 {
				gf, rate = fmt.Sprintf("%.2f", r.FLOPs/1e9), fmt.Sprintf("%.1f", r.GFLOPS)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.1f%%\t%s\t%s\t\n", r.Phase, r.Name, r.Nodes, 1e3*r.Seconds, 100*r.Share, gf, rate)
		}
		tw.Flush()
	}
}

// nodeClass is what a node's time is booked to.
type nodeClass struct {
	phase, part string
	flops       float64
}

// classify books every node of g to a phase and a part of the model.
//
// Forward nodes: distinctive ops name their part (softmax, loss, rotary
// positions, the embedding lookup), a node that reads a weight takes the
// weight's (GGUF tensor names: attn_q, ffn_up, ..._norm, lora_a), a
// product of two activations is attention (or pooling or the loss, by its
// operands), an add of two activations is a residual; the rest (the
// element-wise steps of LayerNorm, GELU, ...) take the part of the node
// that consumes them, or without one, of their operand. Backward nodes: a node that reads the gradient of
// forward node X belongs to X's backward, so it takes X's part; the others
// take the part of a backward operand, else of their consumer.
func classify(g *bindings.Graph) map[bindings.Tensor]nodeClass {
	n := g.NumNodes()
	nodes := make([]bindings.Tensor, n)
	fwd := map[bindings.Tensor]bool{}
	for i := range nodes {
		nodes[i] = g.Node(i)
		if g.InForward(nodes[i]) {
			fwd[nodes[i]] = true
		}
	}
	part := map[bindings.Tensor]string{}
	for _, t := range nodes {
		if fwd[t] {
			if p := forwardPart(t, part); p != "" {
				part[t] = p
			}
		}
	}
	// Consumers come later in the node order: walk backwards and hand each
	// labelled node's part to its unlabelled operands.
	inherit := func(isPhase func(bindings.Tensor) bool) {
		for i := n - 1; i >= 0; i-- {
			t := nodes[i]
			p, ok := part[t]
			if !ok || !isPhase(t) {
				continue
			}
			for j := 0; j < 10; j++ {
				s := t.Src(j)
				if !s.IsNil() && isPhase(s) && part[s] == "" {
					part[s] = p
				}
			}
		}
	}
	inherit(func(t bindings.Tensor) bool { return fwd[t] })
	// What no consumer claims (a graph's last nodes) takes its operand's part.
	for _, t := range nodes {
		for j := 0; j < 10 && fwd[t] && part[t] == ""; j++ {
			part[t] = part[t.Src(j)]
		}
	}
	// An add passes its gradient on as it is, so a chain of adds (bias,
	// residual) shares one gradient tensor with the node that feeds it: the
	// work that reads it is that first node's backward.
	gradOf := map[bindings.Tensor]bindings.Tensor{}
	for _, t := range nodes {
		if fwd[t] {
			if gr := g.Grad(t); !gr.IsNil() {
				if _, ok := gradOf[gr]; !ok {
					gradOf[gr] = t
				}
			}
		}
	}
	bwd := func(t bindings.Tensor) bool { return !fwd[t] && !t.IsNil() }
	for _, t := range nodes {
		if fwd[t] {
			continue
		}
		for j := 0; j < 10 && part[t] == ""; j++ {
			if x, ok := gradOf[t.Src(j)]; ok && part[x] != "" {
				part[t] = part[x]
			}
		}
		for j := 0; j < 10 && part[t] == ""; j++ {
			if s := t.Src(j); !s.IsNil() && bwd(s) && part[s] != "" {
				part[t] = part[s]
			}
		}
	}
	inherit(bwd)
	out := make(map[bindings.Tensor]nodeClass, n)
	for _, t := range nodes {
		c := nodeClass{phase: phaseBackward, part: part[t], flops: t.FLOPs()}
		if fwd[t] {
			c.phase = phaseForward
		}
		if name, ok := strings.CutPrefix(t.Name(), optimNodePrefix); ok {
			// the device optimizer's nodes (devopt.go), named by their part
			c.phase, c.part = phaseOptimizer, name
		}
		if c.part == "" {
			c.part = partOther
		}
		out[t] = c
	}
	return out
}

// forwardPart is the part a forward node names by itself, or "".
func forwardPart(t bindings.Tensor, part map[bindings.Tensor]string) string {
	switch t.Op() {
	case "SOFT_MAX":
		return partSoftmax
	case "CROSS_ENTROPY_LOSS":
		return partLoss
	case "ROPE":
		return partPosition
	case "GET_ROWS":
		return partInput
	}
	a, b := t.Src(0), t.Src(1)
	if a.IsNil() {
		return ""
	}
	if !b.IsNil() && strings.HasPrefix(b.Name(), "out_grad") {
		// recomputation's ⟨out, ∂L/∂out⟩, the loss of a block's graph
		return partLoss
	}
	for _, s := range []bindings.Tensor{a, b} {
		if p := weightPart(s); p != "" {
			return p
		}
	}
	if b.IsNil() {
		return ""
	}
	switch t.Op() {
	case "MUL_MAT":
		switch {
		case strings.HasPrefix(b.Name(), "pool_weights"):
			return partPooling
		case strings.HasPrefix(a.Name(), "embeddings") || strings.HasPrefix(b.Name(), "embeddings"):
			return partLoss
		}
		return partAttention
	case "ADD":
		if part[a] == partLoRA || part[b] == partLoRA {
			return partLoRA
		}
		if a.Op() == "REPEAT" || b.Op() == "REPEAT" {
			return partNorm
		}
		if a.Op() != "NONE" && b.Op() != "NONE" {
			return partResidual
		}
	case "SCALE":
		if part[a] == partLoRA {
			return partLoRA
		}
	}
	return ""
}

// weightPart is the part of the model a weight (or a view of one) belongs
// to, from its GGUF name (llama.cpp's tensor names), or "" for no weight.
func weightPart(t bindings.Tensor) string {
	if t.IsNil() {
		return ""
	}
	// ggml names views and copies "NAME (view)", "NAME (cont)", ...
	name, _, _ := strings.Cut(t.Name(), " (")
	switch {
	case strings.Contains(name, ".lora_"):
		return partLoRA
	case !strings.HasSuffix(name, ".weight") && !strings.HasSuffix(name, ".bias"):
		return ""
	case strings.Contains(name, "norm"):
		return partNorm
	case strings.Contains(name, "ffn_"):
		return partFFN
	case strings.Contains(name, "attn_"):
		return partProjection
	case strings.Contains(name, "embd"):
		return partInput
	}
	return ""
}
