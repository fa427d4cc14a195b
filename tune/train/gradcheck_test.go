package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/retrieval/shareddata"
	"github.com/ragtune/ragtune/tune/encoder"
	"github.com/ragtune/ragtune/tune/model"
	"github.com/ragtune/ragtune/tune/modelinit"
)

// miniPairs reads (query, document) texts from the mini data set.
func miniPairs(t testing.TB, n int) (queries, docs []string) {
	dir := shareddata.Dir(t, "debian-packages", "mini")
	read := func(name string) map[string]string {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out := map[string]string{}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			var r struct {
				ID   string `json:"_id"`
				Text string
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			out[r.ID] = r.Text
		}
		return out
	}
	qs, ds := read("queries.jsonl"), read("corpus.jsonl")
	f, err := os.Open(filepath.Join(dir, "qrels", "train.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	for sc.Scan() && len(queries) < n {
		var q, d string
		var s int
		fmt.Sscan(sc.Text(), &q, &d, &s)
		queries, docs = append(queries, qs[q]), append(docs, ds[d])
	}
	return queries, docs
}

// loadOnCPU loads a model file on a 2-thread CPU backend, both closed when
// the test ends.
func loadOnCPU(t testing.TB, path string) (*bindings.Backend, *model.Model) {
	t.Helper()
	be, err := bindings.NewCPUBackend(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	m, err := model.Load(path, be, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return be, m
}

// writeTiny writes a tiny model; arch "bert+qkv" is bert with fused
// attn_qkv tensors.
func writeTiny(t testing.TB, arch string, typ gguf.TensorType, texts []string) string {
	path := filepath.Join(t.TempDir(), arch+".gguf")
	o := modelinit.Options{Arch: arch, Texts: texts, Seed: 3, Type: typ, Dim: 64, Layers: 2, Heads: 4, FF: 128, Vocab: 600, Ctx: 32}
	o.Arch, o.FusedQKV = strings.CutSuffix(arch, "+qkv")
	if arch == "llama" || arch == "qwen3" {
		o.KVHeads = 2
	}
	if arch == "qwen3" {
		o.HeadDim = 32 // wider than Dim/Heads, as Qwen3's heads are
	}
	if arch == "gemma-embedding" {
		o.Layers, o.KVHeads, o.Dense = 6, 2, 64 // its fewest layers; Dense projections
	}
	if _, err := modelinit.Write(path, o); err != nil {
		t.Fatal(err)
	}
	return path
}

type fixture struct {
	be    *bindings.Backend
	m     *model.Model
	step  *Stepper
	batch Batch
	close func()
}

// newFixture loads a model, makes params with makeParams and tokenizes a batch.
func newFixture(t *testing.T, path string, opts model.LoadOptions, loss LossConfig, makeParams func(m *model.Model, be *bindings.Backend) []*Param) *fixture {
	queries, docs := miniPairs(t, 8)
	return newFixtureOn(t, "", path, opts, loss, makeParams, queries, docs)
}

// newFixtureOn is newFixture on a device, as --device names it ("" is the
// CPU), with the batch made of the first 8 queries and documents given.
func newFixtureOn(t *testing.T, device, path string, opts model.LoadOptions, loss LossConfig, makeParams func(m *model.Model, be *bindings.Backend) []*Param, queries, docs []string) *fixture {
	be, err := bindings.OpenBackend(device, 2)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(path, be, opts)
	if err != nil {
		t.Fatal(err)
	}
	params := makeParams(m, be)
	tok, err := encoder.NewTokenizer(path, m.Config, 20)
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	for _, q := range queries[:4] {
		ids, _, _ := tok.Encode(q)
		b.Queries = append(b.Queries, ids)
	}
	for _, d := range docs[:4] {
		ids, _, _ := tok.Encode(d)
		b.Docs = append(b.Docs, ids)
	}
	if loss.Name == LossTriplet {
		for _, d := range docs[4:8] {
			ids, _, _ := tok.Encode(d)
			b.Docs = append(b.Docs, ids)
		}
		b.NegPerQuery = 1
	}
	tok.Close()
	s, err := NewStepper(m, be, params, loss, 0, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{be: be, m: m, step: s, batch: b, close: func() { s.Close(); m.Close(); be.Close() }}
}

// checkGradients compares autodiff gradients of every param with central
// finite differences (step h) on a sample of elements; fdLoss evaluates the
// loss after a perturbation (nil: the fixture's own loss). The loss is f32:
// the step must be large enough that the loss changes well above its
// rounding, which the four-point stencil allows.
func checkGradients(t *testing.T, f *fixture, params []*Param, fdLoss func() float64, h float32, maxRel float64) {
	if _, err := f.step.Accumulate(f.batch, 1); err != nil {
		t.Fatal(err)
	}
	if fdLoss == nil {
		fdLoss = func() float64 {
			l, err := f.step.Loss(f.batch)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
	}
	for _, p := range params {
		ad := append([]float32(nil), p.Grad...)
		var num, den float64
		stride := max(len(p.Data)/16, 1)
		for i := 0; i < len(p.Data); i += stride {
			orig := p.Data[i]
			at := func(x float32) float64 {
				p.Data[i] = orig + x
				p.upload()
				return fdLoss()
			}
			// Four-point central difference: its O(h⁴) truncation error lets
			// h be large enough to rise above f32 rounding of the loss.
			fd := (-at(2*h) + 8*at(h) - 8*at(-h) + at(-2*h)) / (12 * float64(h))
			p.Data[i] = orig
			p.upload()
			num += (float64(ad[i]) - fd) * (float64(ad[i]) - fd)
			den += fd * fd
		}
		if den == 0 {
			t.Errorf("%s: zero finite-difference gradient: the check says nothing", p.Name)
			continue
		}
		rel := math.Sqrt(num / den)
		t.Logf("%-32s rel L2 error %.2e", p.Name, rel)
		if rel > maxRel {
			t.Errorf("%s: relative error %.3g > %.3g", p.Name, rel, maxRel)
		}
	}
}

// checkDirectional checks each parameter's whole gradient g at once: the
// finite-difference derivative along unit directions u (g/‖g‖ and four
// random ones) must equal g·u to within maxRel·‖g‖. For large tensors
// whose single elements move the f32 loss less than its rounding, this
// still tests every element, with a signal of ‖g‖ instead of one |g_i|.
func checkDirectional(t *testing.T, f *fixture, params []*Param, h float64, maxRel float64) {
	if _, err := f.step.Accumulate(f.batch, 1); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	for _, p := range params {
		g := append([]float32(nil), p.Grad...)
		orig := append([]float32(nil), p.Data...)
		var norm float64
		for _, x := range g {
			norm += float64(x) * float64(x)
		}
		norm = math.Sqrt(norm)
		if norm == 0 {
			t.Errorf("%s: zero gradient: the check says nothing", p.Name)
			continue
		}
		worst := 0.0
		for d := 0; d < 5; d++ {
			u := make([]float64, len(g))
			var un float64
			for i := range u {
				if d == 0 {
					u[i] = float64(g[i])
				} else {
					u[i] = r.NormFloat64()
				}
				un += u[i] * u[i]
			}
			un = math.Sqrt(un)
			var want float64
			for i := range u {
				u[i] /= un
				want += float64(g[i]) * u[i]
			}
			at := func(x float64) float64 {
				for i := range p.Data {
					p.Data[i] = orig[i] + float32(x*u[i])
				}
				p.upload()
				l, err := f.step.Loss(f.batch)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			fd := (-at(2*h) + 8*at(h) - 8*at(-h) + at(-2*h)) / (12 * h)
			worst = max(worst, math.Abs(fd-want)/norm)
		}
		copy(p.Data, orig)
		p.upload()
		t.Logf("%-32s directional error %.2e of |g| = %.3g", p.Name, worst, norm)
		if worst > maxRel {
			t.Errorf("%s: directional error %.3g > %.3g", p.Name, worst, maxRel)
		}
	}
}

// gradTargets are the LoRA targets of the gradient checks: q, v and
// ffn_down, or the fused attn_qkv where q and v are fused with k.
func gradTargets(arch string) []string {
	if arch == "nomic-bert" || arch == "bert+qkv" {
		return []string{"attn_qkv", "ffn_down"}
	}
	return []string{"attn_q", "attn_v", "ffn_down"}
}

// loraStep is the finite-difference step of the LoRA checks: 8e-2, less
// where the loss curves faster in LoRA's parameters and 8e-2 leaves a
// truncation error above the tolerance. On bert's fused qkv (one pair moves
// q, k and v) 8e-2 left 3.7e-2 and 1.5e-2 leaves at most 2.1e-3; gemma's √E
// embedding scale and Dense projections left up to 0.18.
func loraStep(arch string) float32 {
	switch arch {
	case "bert+qkv":
		return 1.5e-2
	case "gemma-embedding":
		return 1e-2
	}
	return 8e-2
}

// loraParams attaches rank-4 LoRA to the targets with B random, so the
// gradient with respect to A is not trivially zero.
func loraParams(dropout float32, targets ...string) func(m *model.Model, be *bindings.Backend) []*Param {
	return func(m *model.Model, be *bindings.Backend) []*Param {
		s, err := AttachLoRA(m, be, LoRAConfig{Rank: 4, Alpha: 8, Dropout: dropout, Targets: targets}, rand.New(rand.NewPCG(2, 2)))
		if err != nil {
			panic(err)
		}
		r := rand.New(rand.NewPCG(9, 9))
		for _, p := range s.Params {
			for i := range p.Data {
				p.Data[i] = float32(r.NormFloat64() * 0.3)
			}
			p.upload()
		}
		return s.Params
	}
}

func TestLoRAGradients(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	texts := append(queries, docs...)
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert", "bert+qkv", "gemma-embedding"} {
		for _, loss := range []string{LossMNRL, LossTriplet} {
			if arch == "gemma-embedding" && loss == LossTriplet {
				// Its six layers make this check take minutes on 2 cores;
				// the losses are checked on the other families.
				continue
			}
			t.Run(arch+"/"+loss, func(t *testing.T) {
				path := writeTiny(t, arch, gguf.F32, texts)
				targets := gradTargets(arch)
				f := newFixture(t, path, model.LoadOptions{}, LossConfig{Name: loss}, loraParams(0, targets...))
				defer f.close()
				checkGradients(t, f, f.step.params, nil, loraStep(arch), 1e-2)
			})
		}
	}
}

func TestFullFineTuneGradients(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	texts := append(queries, docs...)
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert", "bert+qkv", "gemma-embedding"} {
		t.Run(arch, func(t *testing.T) {
			path := writeTiny(t, arch, gguf.F32, texts)
			var sample []*Param
			f := newFixture(t, path, model.LoadOptions{WidenF16: true}, LossConfig{}, func(m *model.Model, be *bindings.Backend) []*Param {
				all, err := FullParams(m)
				if err != nil {
					t.Fatal(err)
				}
				// A sample of base weights: embeddings, a norm, every kind of
				// matrix of the last layer.
				for _, p := range all {
					// A random tiny model attends almost uniformly, where the
					// gradient of q and k is nearly zero and finite
					// differences see only rounding: sharpen attention first.
					// (qwen3's q/k norm gains are left alone: times 8 each,
					// they would scale its scores 64-fold.)
					if (strings.Contains(p.Name, "attn_q") || strings.Contains(p.Name, "attn_k")) && !strings.Contains(p.Name, "_norm") {
						for i := range p.Data {
							p.Data[i] *= 8
						}
						p.upload()
					}
					switch p.Name {
					case "token_embd.weight", "position_embd.weight", "token_embd_norm.bias", "blk.0.attn_output_norm.weight",
						"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.1.ffn_up.weight", "blk.1.ffn_gate.weight", "blk.1.ffn_norm.weight", "output_norm.weight",
						"blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight", "blk.0.attn_qkv.weight", "blk.1.attn_qkv.bias",
						"blk.0.post_attention_norm.weight", "blk.5.post_ffw_norm.weight", "blk.5.attn_q.weight", "dense_2.weight", "dense_3.weight":
						sample = append(sample, p)
					}
				}
				return all
			})
			defer f.close()
			// qwen3's gradients at its embeddings are 20 times bert's (its
			// q/k norms keep attention sharp): a smaller step keeps the
			// finite differences' truncation error down (3e-2 gave 9e-2).
			h := 3e-2
			switch arch {
			case "qwen3":
				h = 1e-2
			case "gemma-embedding":
				// Its √E embedding scale and Dense projections make
				// gradients of hundreds: 1e-2 left errors of 0.46.
				h = 1e-3
			}
			checkDirectional(t, f, sample, h, 1e-2)
		})
	}
}

// TestQuantizedBaseGradients checks QLoRA: autodiff through a frozen Q8_0 or
// Q4_0 base against finite differences of its f32 twin (the same weights,
// dequantized). The quantized forward quantizes activations, so its own
// finite differences are step functions and say nothing; and because the
// quantized forward differs from the twin's by that rounding, the tolerance
// is 5% (measured: 0.3% to 3.2%) instead of the 1% of the f32 checks.
func TestQuantizedBaseGradients(t *testing.T) {
	queries, docs := miniPairs(t, 200)
	texts := append(queries, docs...)
	for _, arch := range []string{"bert", "llama", "qwen3", "nomic-bert"} {
		for _, q := range []gguf.TensorType{gguf.Q8_0, gguf.Q4_0} {
			t.Run(fmt.Sprintf("%s/%s", arch, bindings.Type(q)), func(t *testing.T) {
				path := writeTiny(t, arch, q, texts)
				twinPath := filepath.Join(t.TempDir(), "twin.gguf")
				if err := dequantizeFile(path, twinPath); err != nil {
					t.Fatal(err)
				}
				targets := gradTargets(arch)
				f := newFixture(t, path, model.LoadOptions{}, LossConfig{}, loraParams(0, targets...))
				defer f.close()
				twin := newFixture(t, twinPath, model.LoadOptions{}, LossConfig{}, loraParams(0, targets...))
				defer twin.close()
				// Share the LoRA values: FD perturbs the twin's copy in step.
				fdLoss := func() float64 {
					for i, p := range f.step.params {
						copy(twin.step.params[i].Data, p.Data)
						twin.step.params[i].upload()
					}
					l, err := twin.step.Loss(twin.batch)
					if err != nil {
						t.Fatal(err)
					}
					return l
				}
				checkGradients(t, f, f.step.params, fdLoss, loraStep(arch), 5e-2)
			})
		}
	}
}

// dequantizeFile writes a copy of a model with every tensor as F32.
func dequantizeFile(in, out string) error {
	f, err := gguf.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	b := gguf.NewBuilder()
	for _, kv := range f.KVs {
		if err := b.Set(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	b.MustSet("general.file_type", gguf.Of(uint32(0)))
	for _, t := range f.Tensors {
		vals, err := f.Float32s(t.Name)
		if err != nil {
			return err
		}
		if err := b.AddTensor(t.Name, gguf.F32, t.Dims, gguf.EncodeF32(vals)); err != nil {
			return err
		}
	}
	return b.WriteFile(out)
}

// TestFusedQKVTargets: on a model with fused attn_qkv, asking for attn_q,
// attn_k or attn_v is an error that names attn_qkv, and attn_qkv adapts
// every layer's fused matrix.
func TestFusedQKVTargets(t *testing.T) {
	queries, docs := miniPairs(t, 50)
	path := writeTiny(t, "nomic-bert", gguf.F32, append(queries, docs...))
	be, m := loadOnCPU(t, path)
	_, err := AttachLoRA(m, be, LoRAConfig{Rank: 2, Targets: []string{"attn_q", "attn_v"}}, rand.New(rand.NewPCG(1, 1)))
	if err == nil || !strings.Contains(err.Error(), "target attn_qkv") {
		t.Fatalf("attn_q/attn_v on a fused model: %v", err)
	}
	s, err := AttachLoRA(m, be, LoRAConfig{Rank: 2, Targets: []string{"attn_qkv"}}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Params) != 2*len(m.Layers) || s.Params[0].Name != "blk.0.attn_qkv.weight.lora_a" {
		t.Errorf("%d params, first %q", len(s.Params), s.Params[0].Name)
	}
}
