package adapter_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safetensors"
	"github.com/ragtune/ragtune/tune/adapter"
	"github.com/ragtune/ragtune/tune/hfconvert"
	"github.com/ragtune/ragtune/tune/modelinit"
	"github.com/ragtune/ragtune/tune/train"
)

// hfModules are the Hugging Face modules of block N for each adapted kind,
// from the models' own definitions (transformers' BertModel, LlamaModel).
var hfModules = map[string]map[string]string{
	"bert": {
		"attn_q": "encoder.layer.%d.attention.self.query", "attn_k": "encoder.layer.%d.attention.self.key",
		"attn_v": "encoder.layer.%d.attention.self.value", "attn_output": "encoder.layer.%d.attention.output.dense",
		"ffn_up": "encoder.layer.%d.intermediate.dense", "ffn_down": "encoder.layer.%d.output.dense",
	},
	"llama": {
		"attn_q": "layers.%d.self_attn.q_proj", "attn_k": "layers.%d.self_attn.k_proj",
		"attn_v": "layers.%d.self_attn.v_proj", "attn_output": "layers.%d.self_attn.o_proj",
		"ffn_gate": "layers.%d.mlp.gate_proj", "ffn_up": "layers.%d.mlp.up_proj", "ffn_down": "layers.%d.mlp.down_proj",
	},
}

// peftKey finds the safetensors key of a module's half, allowing the module
// path a prefix (model. for a causal LM's layout).
func peftKey(t *testing.T, st *safetensors.File, module, half string) string {
	t.Helper()
	for _, n := range st.Names() {
		if strings.HasPrefix(n, "base_model.model.") && strings.HasSuffix(n, module+".lora_"+half+".weight") {
			return n
		}
	}
	t.Fatalf("no tensor for %s lora_%s in %v", module, half, st.Names())
	return ""
}

// toHFRows undoes llama.cpp's converter on the rows of a q or k matrix:
// it wrote w_hf.reshape(heads, 2, hd/2, cols).swapaxes(1, 2), so GGUF row
// (h, j, half) is Hugging Face's row (h, half, j).
func toHFRows(m []float32, rows, cols, heads int) []float32 {
	hd := rows / heads
	out := make([]float32, len(m))
	for g := 0; g < rows; g++ {
		h, j, half := g/hd, (g%hd)/2, g%2
		copy(out[(h*hd+half*hd/2+j)*cols:][:cols], m[g*cols:(g+1)*cols])
	}
	return out
}

type hfConfig struct {
	PeftType      string   `json:"peft_type"`
	TaskType      string   `json:"task_type"`
	R             int      `json:"r"`
	LoraAlpha     float64  `json:"lora_alpha"`
	UseRSLoRA     bool     `json:"use_rslora"`
	UseDoRA       bool     `json:"use_dora"`
	FanInFanOut   bool     `json:"fan_in_fan_out"`
	Bias          string   `json:"bias"`
	TargetModules []string `json:"target_modules"`
	BaseModel     *string  `json:"base_model_name_or_path"`
	LoraDropout   *float64 `json:"lora_dropout"`
}

func readHFConfig(t *testing.T, dir string) hfConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, adapter.PEFTConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var c hfConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestExportPEFTTrainedAdapter exports an adapter trained by ragtune and
// checks the PEFT folder against the GGUF: names, shapes and values (rows
// of llama's q and k back in Hugging Face's order), the config, and that
// PEFT's formula W + (lora_alpha/r)·B·A computed here on Hugging Face's
// layout gives what `adapter merge` gives for every adapted weight: on the
// GGUF weights moved to that layout here, and on the Hugging Face folders
// `model export --hf` writes of the base and of the merged model (what a
// Python user loads PEFT onto, and what the merge gives them).
func TestExportPEFTTrainedAdapter(t *testing.T) {
	texts := sharedTexts(t, 500)
	for _, arch := range []string{"bert", "llama"} {
		t.Run(arch, func(t *testing.T) {
			base := tinyModel(t, arch, gguf.F32, texts)
			ad := trainAdapter(t, base, parityTargets[arch], texts[20:84])
			dir := filepath.Join(t.TempDir(), "peft")
			res, err := adapter.ExportPEFT(ad, dir, adapter.PEFTOptions{Model: base, BaseModel: "org/tiny-" + arch})
			if err != nil {
				t.Fatal(err)
			}
			cfg := readHFConfig(t, dir)
			if cfg.PeftType != "LORA" || cfg.TaskType != "FEATURE_EXTRACTION" || cfg.R != 4 || cfg.LoraAlpha != 8 ||
				cfg.UseRSLoRA || cfg.UseDoRA || cfg.FanInFanOut || cfg.Bias != "none" || cfg.LoraDropout == nil ||
				cfg.BaseModel == nil || *cfg.BaseModel != "org/tiny-"+arch {
				t.Errorf("config %+v", cfg)
			}
			var wantTargets []string
			for _, k := range parityTargets[arch] {
				wantTargets = append(wantTargets, strings.TrimPrefix(hfModules[arch][k], "layers.%d."))
			}
			for i, w := range wantTargets {
				wantTargets[i] = strings.TrimPrefix(w, "encoder.layer.%d.")
			}
			slices.Sort(wantTargets)
			if !slices.Equal(cfg.TargetModules, wantTargets) {
				t.Errorf("target_modules %v, want %v", cfg.TargetModules, wantTargets)
			}

			st, err := safetensors.Open(filepath.Join(dir, adapter.PEFTWeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if st.Metadata["format"] != "pt" {
				t.Errorf("metadata %v", st.Metadata)
			}
			info, err := adapter.Inspect(ad)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Tensors) != 2*len(info.Pairs) || res.Modules != len(info.Pairs) {
				t.Errorf("%d tensors, %d modules for %d pairs", len(st.Tensors), res.Modules, len(info.Pairs))
			}
			merged := filepath.Join(t.TempDir(), "merged.gguf")
			if _, err := adapter.Merge(base, ad, merged, adapter.MergeOptions{Scale: 1}); err != nil {
				t.Fatal(err)
			}
			af, bf, mf := openGGUF(t, ad), openGGUF(t, base), openGGUF(t, merged)
			hfBase, hfMerged := hfWeights(t, base), hfWeights(t, merged)
			heads := headCounts(t, bf, arch)
			scale := cfg.LoraAlpha / float64(cfg.R)
			for _, p := range info.Pairs {
				blk, kind := 0, ""
				fmt.Sscanf(p.Base, "blk.%d.", &blk)
				kind = strings.TrimSuffix(p.Base[strings.IndexByte(p.Base[4:], '.')+5:], ".weight")
				module := fmt.Sprintf(hfModules[arch][kind], blk)
				ka, kb := peftKey(t, st, module, "A"), peftKey(t, st, module, "B")
				ta, _ := st.Tensor(ka)
				tb, _ := st.Tensor(kb)
				if ta.DType != safetensors.F32 || !slices.Equal(ta.Shape, []int64{4, int64(p.In)}) || !slices.Equal(tb.Shape, []int64{int64(p.Out), 4}) {
					t.Fatalf("%s: A %s %v, B %s %v", module, ta.DType, ta.Shape, tb.DType, tb.Shape)
				}
				A, _ := st.Float32s(ka)
				B, _ := st.Float32s(kb)
				gA, _ := af.Float32s(p.A.Name)
				gB, _ := af.Float32s(p.B.Name)
				W, _ := bf.Float32s(p.Base)
				M, _ := mf.Float32s(p.Base)
				// Hugging Face's layout of B, W and the merged weight.
				if h, ok := heads[kind]; ok && arch == "llama" {
					gB = toHFRows(gB, p.Out, 4, h)
					W = toHFRows(W, p.Out, p.In, h)
					M = toHFRows(M, p.Out, p.In, h)
				}
				if !slices.Equal(A, gA) || !slices.Equal(B, gB) {
					t.Fatalf("%s: values differ from %s", module, p.Base)
				}
				if worst := peftDiff(W, M, A, B, scale, p.In, p.Out, 4); worst > 1e-5 {
					t.Errorf("%s: PEFT's W + s·B·A differs from adapter merge by %.3g", module, worst)
				}
				// The same on the folders `model export --hf` writes.
				Wh, err := hfBase.Float32s(module + ".weight")
				if err != nil {
					t.Fatal(err)
				}
				Mh, _ := hfMerged.Float32s(module + ".weight")
				if d := peftDiff(Wh, Mh, A, B, scale, p.In, p.Out, 4); d > 1e-5 {
					t.Errorf("%s: PEFT on the exported Hugging Face base differs from the exported merged model by %.3g", module, d)
				}
			}
		})
	}
}

// hfWeights exports a GGUF model as a Hugging Face folder (`model export
// --hf`) and opens its weights.
func hfWeights(t *testing.T, model string) *safetensors.File {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hf")
	if _, err := hfconvert.Export(model, dir, hfconvert.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Open(filepath.Join(dir, safetensors.SingleFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// peftDiff is the largest |W + s·B·A − M|, all row-major, W and M [out][in].
func peftDiff(W, M, A, B []float32, s float64, in, out, r int) float64 {
	var worst float64
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			var d float64
			for k := 0; k < r; k++ {
				d += float64(B[o*r+k]) * float64(A[k*in+i])
			}
			worst = max(worst, math.Abs(float64(W[o*in+i])+s*d-float64(M[o*in+i])))
		}
	}
	return worst
}

func openGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// headCounts are the head counts whose rows llama.cpp permutes: q's and k's.
func headCounts(t *testing.T, f *gguf.File, arch string) map[string]int {
	t.Helper()
	hp, err := gguf.ValidateModel(f, arch)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]int{"attn_q": int(hp.Heads[0]), "attn_k": int(hp.HeadsKV[0])}
}

// TestPEFTRoundTrip: export then import gives the adapter's tensors back
// bit for bit, with its alpha, for trained bert and llama adapters and an
// rsLoRA one; llama.cpp's loader checks pass on the result.
func TestPEFTRoundTrip(t *testing.T) {
	texts := sharedTexts(t, 500)
	for _, arch := range []string{"bert", "llama"} {
		t.Run(arch, func(t *testing.T) {
			base := tinyModel(t, arch, gguf.F32, texts)
			ad := trainAdapter(t, base, parityTargets[arch], texts[20:84])
			roundTrip(t, base, ad)
		})
	}
	t.Run("rslora", func(t *testing.T) {
		base := tinyModel(t, "bert", gguf.F32, texts)
		for _, c := range []struct {
			rank  int
			alpha float32
		}{{8, 32}, {8, 7.3}, {3, 0.7}, {16, 5}} {
			lc := train.LoRAConfig{Rank: c.rank, Alpha: c.alpha, Scaling: train.ScalingRS}
			ad := rsAdapter(t, base, lc)
			dir := roundTrip(t, base, ad)
			cfg := readHFConfig(t, dir)
			// PEFT's scale lora_alpha/√r against llama.cpp's alpha/r in float32.
			peftScale := cfg.LoraAlpha / math.Sqrt(float64(c.rank))
			ggufScale := float64(lc.ExportAlpha() / float32(c.rank))
			if !cfg.UseRSLoRA || float32(cfg.LoraAlpha) != c.alpha || math.Abs(peftScale/ggufScale-1) > 1e-6 {
				t.Errorf("r %d alpha %g: config use_rslora %v lora_alpha %v: PEFT scale %v, llama.cpp's %v", c.rank, c.alpha, cfg.UseRSLoRA, cfg.LoraAlpha, peftScale, ggufScale)
			}
		}
	})
}

// rsAdapter saves a random rsLoRA adapter on attn_q and ffn_up as train does.
func rsAdapter(t *testing.T, base string, lc train.LoRAConfig) string {
	t.Helper()
	ad := randomAdapter(t, base, []string{"attn_q", "ffn_up"}, lc.Rank, lc.ExportAlpha(), 3, 0.1)
	f := openGGUF(t, ad)
	var pairs []adapter.Pair
	for i := 0; i+1 < len(f.Tensors); i += 2 {
		a, b := f.Tensors[i], f.Tensors[i+1]
		av, _ := f.Float32s(a.Name)
		bv, _ := f.Float32s(b.Name)
		pairs = append(pairs, adapter.Pair{Base: strings.TrimSuffix(a.Name, ".lora_a"), A: av, B: bv, In: int(a.Dims[0]), Rank: lc.Rank, Out: int(b.Dims[1])})
	}
	path := filepath.Join(t.TempDir(), "rs.gguf")
	if err := adapter.Save(path, "bert", lc.ExportAlpha(), pairs, map[string]string{"ragtune.scaling": train.ScalingRS}); err != nil {
		t.Fatal(err)
	}
	return path
}

// roundTrip exports ad, imports it back and compares the tensors.
func roundTrip(t *testing.T, base, ad string) (peftDir string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "peft")
	if _, err := adapter.ExportPEFT(ad, dir, adapter.PEFTOptions{Model: base}); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(t.TempDir(), "back.gguf")
	res, err := adapter.ImportPEFT(dir, back, base)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) > 0 {
		t.Errorf("import notes %v", res.Notes)
	}
	orig, got := openGGUF(t, ad), openGGUF(t, back)
	alpha0, _, _ := orig.Float32("adapter.lora.alpha")
	alpha1, _, _ := got.Float32("adapter.lora.alpha")
	if math.Float32bits(alpha0) != math.Float32bits(alpha1) {
		t.Errorf("alpha %v came back as %v", alpha0, alpha1)
	}
	s0, _, _ := orig.String("ragtune.scaling")
	s1, _, _ := got.String("ragtune.scaling")
	if s0 != s1 {
		t.Errorf("ragtune.scaling %q came back as %q", s0, s1)
	}
	if len(orig.Tensors) != len(got.Tensors) {
		t.Fatalf("%d tensors came back as %d", len(orig.Tensors), len(got.Tensors))
	}
	for _, ti := range orig.Tensors {
		gi, ok := got.Tensor(ti.Name)
		if !ok || gi.Type != ti.Type || !slices.Equal(gi.Dims, ti.Dims) {
			t.Fatalf("%s %s %v came back as %v %s %v", ti.Name, ti.Type, ti.Dims, ok, gi.Type, gi.Dims)
		}
		a, _ := orig.TensorData(ti.Name)
		b, _ := got.TensorData(ti.Name)
		if !slices.Equal(a, b) {
			t.Errorf("%s: bytes differ", ti.Name)
		}
	}
	if _, err := adapter.Inspect(back); err != nil {
		t.Error(err)
	}
	return dir
}

// TestExportPEFTSplitsFusedQKV: a pair on a fused attn_qkv becomes bert's
// query, key and value modules, each with its rows of B and the whole A,
// so that together they are the fused update row for row.
func TestExportPEFTSplitsFusedQKV(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const in, r = 16, 3
	p := adapter.Pair{Base: "blk.1.attn_qkv.weight", In: in, Out: 3 * in, Rank: r, A: make([]float32, r*in), B: make([]float32, 3*in*r)}
	for i := range p.A {
		p.A[i] = float32(rng.NormFloat64())
	}
	for i := range p.B {
		p.B[i] = float32(rng.NormFloat64())
	}
	ad := filepath.Join(t.TempDir(), "qkv.gguf")
	if err := adapter.Save(ad, "bert", 6, []adapter.Pair{p}, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := adapter.ExportPEFT(ad, dir, adapter.PEFTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Modules != 3 {
		t.Errorf("%d modules, want 3", res.Modules)
	}
	st, err := safetensors.Open(filepath.Join(dir, adapter.PEFTWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, kind := range []string{"attn_q", "attn_k", "attn_v"} {
		module := fmt.Sprintf(hfModules["bert"][kind], 1)
		A, _ := st.Float32s(peftKey(t, st, module, "A"))
		B, _ := st.Float32s(peftKey(t, st, module, "B"))
		if !slices.Equal(A, p.A) || !slices.Equal(B, p.B[i*in*r:(i+1)*in*r]) {
			t.Errorf("%s: not the fused pair's A and rows %d..%d of B", module, i*in, (i+1)*in)
		}
	}
	if cfg := readHFConfig(t, dir); cfg.LoraAlpha != 6 || cfg.R != r {
		t.Errorf("config %+v", cfg)
	}
}

// TestRopeOrderMatchesRotaryConventions checks the row order ExportPEFT
// uses for llama's q and k by the rotations themselves: Hugging Face
// rotates dimension pairs (d, d+hd/2), llama.cpp's normal rope (2d, 2d+1),
// both by pos·base^(-2d/hd). Rotating a vector in Hugging Face's layout and
// then moving it to llama.cpp's must equal moving then rotating.
func TestRopeOrderMatchesRotaryConventions(t *testing.T) {
	const heads, hd, pos = 3, 8, 5
	rng := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, heads*hd)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	rotate := func(v []float32, pair func(d int) (int, int)) []float32 {
		out := slices.Clone(v)
		for h := 0; h < heads; h++ {
			for d := 0; d < hd/2; d++ {
				th := pos * math.Pow(10000, -2*float64(d)/hd)
				i, j := pair(d)
				a, b := float64(v[h*hd+i]), float64(v[h*hd+j])
				out[h*hd+i] = float32(a*math.Cos(th) - b*math.Sin(th))
				out[h*hd+j] = float32(a*math.Sin(th) + b*math.Cos(th))
			}
		}
		return out
	}
	hfPair := func(d int) (int, int) { return d, d + hd/2 }
	ggmlPair := func(d int) (int, int) { return 2 * d, 2*d + 1 }
	// toHFRows on the row numbers says where each GGUF row goes; the
	// export's order must be its inverse.
	rows := make([]float32, heads*hd)
	for g := range rows {
		rows[g] = float32(g)
	}
	moved := toHFRows(rows, heads*hd, 1, heads) // moved[hfRow] = ggufRow
	toGGUF := func(v []float32) []float32 {
		out := make([]float32, len(v))
		for hfRow, g := range moved {
			out[int(g)] = v[hfRow]
		}
		return out
	}
	a := toGGUF(rotate(x, hfPair))
	b := rotate(toGGUF(x), ggmlPair)
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-6 {
			t.Fatalf("row %d: %v vs %v", i, a[i], b[i])
		}
	}
}

// smallBert writes a tiny bert base from a few literal texts (no shared data).
func smallBert(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bert.gguf")
	texts := []string{"apt installs packages", "git tracks source code", "vim edits text files", "the kernel runs programs"}
	if _, err := modelinit.Write(path, modelinit.Options{Arch: "bert", Texts: texts, Vocab: 200, Layers: 2, Dim: 32, Heads: 2, FF: 64}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPEFTMixedRanks: pairs of different ranks get rank_pattern entries
// that name one block's module each, and still come back bit for bit.
func TestPEFTMixedRanks(t *testing.T) {
	base := smallBert(t)
	rng := rand.New(rand.NewPCG(7, 8))
	var pairs []adapter.Pair
	for blk := range 2 {
		q := randomPairOf(rng, fmt.Sprintf("blk.%d.attn_q.weight", blk), 32, 32, 4)
		up := randomPairOf(rng, fmt.Sprintf("blk.%d.ffn_up.weight", blk), 32, 64, 2)
		pairs = append(pairs, q, up)
	}
	pairs = append(pairs, randomPairOf(rng, "blk.0.ffn_down.weight", 64, 32, 2))
	ad := filepath.Join(t.TempDir(), "mixed.gguf")
	if err := adapter.Save(ad, "bert", 6, pairs, nil); err != nil {
		t.Fatal(err)
	}
	dir := roundTrip(t, base, ad)
	raw, _ := os.ReadFile(filepath.Join(dir, adapter.PEFTConfigFile))
	var cfg struct {
		R             int            `json:"r"`
		LoraAlpha     float64        `json:"lora_alpha"`
		RankPattern   map[string]int `json:"rank_pattern"`
		TargetModules []string       `json:"target_modules"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	// ffn_down only in block 0: the short names would adapt block 1's too.
	wantTargets := []string{
		"encoder.layer.0.attention.self.query", "encoder.layer.0.intermediate.dense", "encoder.layer.0.output.dense",
		"encoder.layer.1.attention.self.query", "encoder.layer.1.intermediate.dense",
	}
	if cfg.R != 2 || cfg.LoraAlpha != 6 || len(cfg.RankPattern) != 2 || cfg.RankPattern["0.attention.self.query"] != 4 ||
		cfg.RankPattern["1.attention.self.query"] != 4 || !slices.Equal(cfg.TargetModules, wantTargets) {
		t.Errorf("config %+v", cfg)
	}
}

func randomPairOf(rng *rand.Rand, base string, in, out, r int) adapter.Pair {
	p := adapter.Pair{Base: base, In: in, Out: out, Rank: r, A: make([]float32, in*r), B: make([]float32, r*out)}
	for i := range p.A {
		p.A[i] = float32(rng.NormFloat64())
	}
	for i := range p.B {
		p.B[i] = float32(rng.NormFloat64())
	}
	return p
}

// TestExportPEFTRefuses: what PEFT cannot represent, or what the export
// cannot know, is an error that says why; nothing is written.
func TestExportPEFTRefuses(t *testing.T) {
	base := smallBert(t)
	rng := rand.New(rand.NewPCG(1, 1))
	dora := filepath.Join(t.TempDir(), "dora.gguf")
	b := gguf.NewBuilder()
	b.MustSet("general.architecture", gguf.Of("bert"))
	b.MustSet("ragtune.method", gguf.Of("dora"))
	if err := b.AddTensor("blk.0.attn_q.weight", gguf.F32, []int64{4, 4}, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFile(dora); err != nil {
		t.Fatal(err)
	}
	llama := filepath.Join(t.TempDir(), "llama.gguf")
	if err := adapter.Save(llama, "llama", 8, []adapter.Pair{randomPairOf(rng, "blk.0.attn_k.weight", 32, 16, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	gqa := filepath.Join(t.TempDir(), "qkv.gguf")
	if err := adapter.Save(gqa, "qwen3", 8, []adapter.Pair{randomPairOf(rng, "blk.0.attn_qkv.weight", 32, 64, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	wide := filepath.Join(t.TempDir(), "wide.gguf")
	if err := adapter.Save(wide, "bert", 8, []adapter.Pair{randomPairOf(rng, "blk.0.attn_q.weight", 48, 32, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ad, model, want string
	}{
		{"dora", dora, "", "DoRA run's merged model, not an adapter"},
		{"llama q/k alone", llama, "", "needs the base model (--model)"},
		{"fused qkv of a GQA family", gqa, "", "splitting a fused qkv"},
		{"wrong base", wide, base, `"blk.0.attn_q.weight" is [32 32]`},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		_, err := adapter.ExportPEFT(c.ad, dir, adapter.PEFTOptions{Model: c.model})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %q", c.name, err, c.want)
		}
		if _, statErr := os.Stat(dir); statErr == nil {
			t.Errorf("%s: %s was created despite the error", c.name, dir)
		}
	}
}

// TestImportPEFTRefuses: malformed or unrepresentable PEFT folders are
// errors naming the file and the field or tensor.
func TestImportPEFTRefuses(t *testing.T) {
	base := smallBert(t)
	rng := rand.New(rand.NewPCG(2, 2))
	ad := filepath.Join(t.TempDir(), "a.gguf")
	if err := adapter.Save(ad, "bert", 4, []adapter.Pair{randomPairOf(rng, "blk.0.attn_q.weight", 32, 32, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(t.TempDir(), "peft")
	if _, err := adapter.ExportPEFT(ad, good, adapter.PEFTOptions{}); err != nil {
		t.Fatal(err)
	}
	goodCfg, _ := os.ReadFile(filepath.Join(good, adapter.PEFTConfigFile))
	goodW, _ := os.ReadFile(filepath.Join(good, adapter.PEFTWeightsFile))
	const q = "base_model.model.encoder.layer.0.attention.self.query"
	weights := func(add func(b *safetensors.Builder)) []byte {
		b := safetensors.NewBuilder()
		add(b)
		path := filepath.Join(t.TempDir(), "w.safetensors")
		if err := b.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(path)
		return raw
	}
	f32 := func(n int) []float32 { return make([]float32, n) }
	edit := func(old, new string) []byte { return []byte(strings.Replace(string(goodCfg), old, new, 1)) }
	for _, c := range []struct {
		name      string
		cfg, w    []byte
		want      string
		noWeights bool
	}{
		{name: "bad JSON", cfg: []byte(`{"peft_type": "LORA",`), want: "adapter_config.json"},
		{name: "r as text", cfg: edit(`"r": 2`, `"r": "2"`), want: `field "r"`},
		{name: "IA3", cfg: edit(`"peft_type": "LORA"`, `"peft_type": "IA3"`), want: `peft_type is "IA3"`},
		{name: "DoRA", cfg: edit(`"use_dora": false`, `"use_dora": true`), want: "DoRA's magnitude vectors"},
		{name: "bias", cfg: edit(`"bias": "none"`, `"bias": "lora_only"`), want: `bias is "lora_only"`},
		{name: "modules_to_save", cfg: edit(`"modules_to_save": null`, `"modules_to_save": ["pooler"]`), want: "modules_to_save"},
		{name: "zero alpha", cfg: edit(`"lora_alpha": 4`, `"lora_alpha": 0`), want: "lora_alpha is 0"},
		{name: "pickle only", noWeights: true, want: "adapter_model.bin (a pickle)"},
		{name: "unknown module", w: weights(func(b *safetensors.Builder) {
			b.AddFloat32s("base_model.model.pooler.dense.lora_A.weight", safetensors.F32, []int64{2, 32}, f32(64))
		}), want: `module "pooler.dense"`},
		{name: "not LoRA", w: weights(func(b *safetensors.Builder) {
			b.AddFloat32s(q+".bias", safetensors.F32, []int64{32}, f32(32))
		}), want: "not a LoRA half"},
		{name: "half pair", w: weights(func(b *safetensors.Builder) {
			b.AddFloat32s(q+".lora_A.weight", safetensors.F32, []int64{2, 32}, f32(64))
		}), want: "only one of lora_A and lora_B"},
		{name: "wrong width", w: weights(func(b *safetensors.Builder) {
			b.AddFloat32s(q+".lora_A.weight", safetensors.F32, []int64{2, 16}, f32(32))
			b.AddFloat32s(q+".lora_B.weight", safetensors.F32, []int64{32, 2}, f32(64))
		}), want: "do not fit blk.0.attn_q.weight (in 32, out 32)"},
		{name: "rank mismatch", w: weights(func(b *safetensors.Builder) {
			b.AddFloat32s(q+".lora_A.weight", safetensors.F32, []int64{2, 32}, f32(64))
			b.AddFloat32s(q+".lora_B.weight", safetensors.F32, []int64{16, 4}, f32(64))
		}), want: "lora_B has 64 values, want [16, 2]"},
		{name: "embedding", w: weights(func(b *safetensors.Builder) {
			b.AddFloat32s("base_model.model.embeddings.word_embeddings.lora_embedding_A", safetensors.F32, []int64{2, 200}, f32(400))
		}), want: "token-embedding adapters"},
	} {
		dir := t.TempDir()
		cfg, w := goodCfg, goodW
		if c.cfg != nil {
			cfg = c.cfg
		}
		if c.w != nil {
			w = c.w
		}
		os.WriteFile(filepath.Join(dir, adapter.PEFTConfigFile), cfg, 0o644)
		if c.noWeights {
			os.WriteFile(filepath.Join(dir, "adapter_model.bin"), []byte("pickle"), 0o644)
		} else {
			os.WriteFile(filepath.Join(dir, adapter.PEFTWeightsFile), w, 0o644)
		}
		out := filepath.Join(t.TempDir(), "out.gguf")
		_, err := adapter.ImportPEFT(dir, out, base)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %q", c.name, err, c.want)
		}
		if _, statErr := os.Stat(out); statErr == nil {
			t.Errorf("%s: %s was written despite the error", c.name, out)
		}
	}
}

// TestExportPEFTTokenEmbedding: a token-embedding pair (llama.cpp stores
// its A transposed, ne [r, V]) becomes PEFT's lora_embedding_A [r, V] and
// lora_embedding_B [E, r], and PEFT's update of the table,
// W + s·(B·A)ᵀ, equals adapter merge's.
func TestExportPEFTTokenEmbedding(t *testing.T) {
	base := smallBert(t)
	bf := openGGUF(t, base)
	emb, _ := bf.Tensor("token_embd.weight")
	E, V := int(emb.Dims[0]), int(emb.Dims[1])
	const r = 3
	rng := rand.New(rand.NewPCG(11, 12))
	A, B := randomPairOf(rng, "x", V, 1, r).A, randomPairOf(rng, "x", E, 1, r).A // [V][r], [E][r]
	b := gguf.NewBuilder()
	b.MustSet("general.type", gguf.Of("adapter"))
	b.MustSet("general.architecture", gguf.Of("bert"))
	b.MustSet("adapter.type", gguf.Of("lora"))
	b.MustSet("adapter.lora.alpha", gguf.Of(float32(6)))
	if err := b.AddTensor("token_embd.weight.lora_a", gguf.F32, []int64{r, int64(V)}, gguf.EncodeF32(A)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddTensor("token_embd.weight.lora_b", gguf.F32, []int64{r, int64(E)}, gguf.EncodeF32(B)); err != nil {
		t.Fatal(err)
	}
	ad := filepath.Join(t.TempDir(), "emb.gguf")
	if err := b.WriteFile(ad); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := adapter.ExportPEFT(ad, dir, adapter.PEFTOptions{Model: base}); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Open(filepath.Join(dir, adapter.PEFTWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const key = "base_model.model.embeddings.word_embeddings.lora_embedding_"
	ta, _ := st.Tensor(key + "A")
	tb, _ := st.Tensor(key + "B")
	if !slices.Equal(ta.Shape, []int64{r, int64(V)}) || !slices.Equal(tb.Shape, []int64{int64(E), r}) {
		t.Fatalf("lora_embedding_A %v, lora_embedding_B %v; names %v", ta.Shape, tb.Shape, st.Names())
	}
	pA, _ := st.Float32s(key + "A")
	pB, _ := st.Float32s(key + "B")
	merged := filepath.Join(t.TempDir(), "merged.gguf")
	if _, err := adapter.Merge(base, ad, merged, adapter.MergeOptions{Scale: 1}); err != nil {
		t.Fatal(err)
	}
	W, _ := bf.Float32s("token_embd.weight") // [V][E], nn.Embedding's weight
	M, _ := openGGUF(t, merged).Float32s("token_embd.weight")
	cfg := readHFConfig(t, dir)
	s := cfg.LoraAlpha / float64(cfg.R)
	var worst float64
	for v := 0; v < V; v++ {
		for e := 0; e < E; e++ {
			var d float64 // (B·A)[e][v]
			for k := 0; k < r; k++ {
				d += float64(pB[e*r+k]) * float64(pA[k*V+v])
			}
			worst = max(worst, math.Abs(float64(W[v*E+e])+s*d-float64(M[v*E+e])))
		}
	}
	if cfg.R != r || cfg.LoraAlpha != 6 || !slices.Equal(cfg.TargetModules, []string{"embeddings.word_embeddings"}) || worst > 1e-5 {
		t.Errorf("config %+v; PEFT's table differs from adapter merge's by %.3g", cfg, worst)
	}
}

// BenchmarkExportPEFT exports a rank-16 adapter on every linear layer of a
// bert-large-shaped model (mxbai-embed-large: 24 blocks, 1024 wide, FFN
// 4096; 7.1 M adapter parameters, 28 MiB in f32).
func BenchmarkExportPEFT(b *testing.B) {
	const blocks, dim, ff, r = 24, 1024, 4096, 16
	rng := rand.New(rand.NewPCG(1, 2))
	var pairs []adapter.Pair
	for blk := range blocks {
		for _, k := range []struct {
			kind    string
			in, out int
		}{{"attn_q", dim, dim}, {"attn_k", dim, dim}, {"attn_v", dim, dim}, {"attn_output", dim, dim}, {"ffn_up", dim, ff}, {"ffn_down", ff, dim}} {
			pairs = append(pairs, randomPairOf(rng, fmt.Sprintf("blk.%d.%s.weight", blk, k.kind), k.in, k.out, r))
		}
	}
	ad := filepath.Join(b.TempDir(), "large.gguf")
	if err := adapter.Save(ad, "bert", 32, pairs, nil); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	b.ResetTimer()
	for range b.N {
		if _, err := adapter.ExportPEFT(ad, dir, adapter.PEFTOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestImportPEFTFolder imports a folder shaped as PEFT writes one (every
// key of its adapter_config.json, a checkpoint prefix "bert." before the
// module paths, an alpha_pattern) and requires adapter merge of the result
// to give PEFT's own update, W + (alpha/r)·B·A per module.
func TestImportPEFTFolder(t *testing.T) {
	base := smallBert(t)
	dir := t.TempDir()
	cfg := `{
  "alpha_pattern": {"intermediate.dense": 2},
  "auto_mapping": null,
  "base_model_name_or_path": "sentence-transformers/all-MiniLM-L6-v2",
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": "gaussian",
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 16,
  "lora_dropout": 0.1,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "r": 8,
  "rank_pattern": {},
  "revision": null,
  "target_modules": ["query", "intermediate.dense"],
  "task_type": "FEATURE_EXTRACTION",
  "use_dora": false,
  "use_rslora": false
}`
	if err := os.WriteFile(filepath.Join(dir, adapter.PEFTConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	type module struct {
		kind    string
		blk     int
		in, out int
		scale   float64
		A, B    []float32
	}
	var mods []module
	st := safetensors.NewBuilder()
	st.SetMetadata("format", "pt")
	for blk := range 2 {
		for _, m := range []module{
			{kind: "attn_q", blk: blk, in: 32, out: 32, scale: 16.0 / 8},
			{kind: "ffn_up", blk: blk, in: 32, out: 64, scale: 2.0 / 8}, // alpha_pattern's alpha
		} {
			p := randomPairOf(rng, "", m.in, m.out, 8)
			m.A, m.B = p.A, p.B
			key := "base_model.model.bert." + fmt.Sprintf(hfModules["bert"][m.kind], blk)
			if err := st.AddFloat32s(key+".lora_A.weight", safetensors.F32, []int64{8, int64(m.in)}, m.A); err != nil {
				t.Fatal(err)
			}
			if err := st.AddFloat32s(key+".lora_B.weight", safetensors.F32, []int64{int64(m.out), 8}, m.B); err != nil {
				t.Fatal(err)
			}
			mods = append(mods, m)
		}
	}
	if err := st.WriteFile(filepath.Join(dir, adapter.PEFTWeightsFile)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "imported.gguf")
	res, err := adapter.ImportPEFT(dir, out, base)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pairs != 4 || res.Alpha != 16 || res.Scaling != "standard" || len(res.Notes) != 2 {
		t.Errorf("result %+v", res)
	}
	merged := filepath.Join(t.TempDir(), "merged.gguf")
	if _, err := adapter.Merge(base, out, merged, adapter.MergeOptions{Scale: 1}); err != nil {
		t.Fatal(err)
	}
	bf, mf := openGGUF(t, base), openGGUF(t, merged)
	for _, m := range mods {
		tensor := fmt.Sprintf("blk.%d.%s.weight", m.blk, m.kind)
		W, _ := bf.Float32s(tensor)
		M, _ := mf.Float32s(tensor)
		var worst float64
		for o := 0; o < m.out; o++ {
			for i := 0; i < m.in; i++ {
				var d float64
				for k := 0; k < 8; k++ {
					d += float64(m.B[o*8+k]) * float64(m.A[k*m.in+i])
				}
				worst = max(worst, math.Abs(float64(W[o*m.in+i])+m.scale*d-float64(M[o*m.in+i])))
			}
		}
		if worst > 1e-5 {
			t.Errorf("%s: merged import differs from PEFT's update by %.3g", tensor, worst)
		}
	}
}
