package adapter

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/bindings/safetensors"
	"github.com/ragtune/ragtune/tune/hf"
)

// A PEFT adapter (Hugging Face's peft library, what PeftModel.from_pretrained
// loads) is a folder of two files.
const (
	PEFTConfigFile  = "adapter_config.json"
	PEFTWeightsFile = "adapter_model.safetensors"
)

// peftPrefix comes before every module name in PEFT's saved state dict: the
// PeftModel's base_model (the LoRA wrapper) and its model.
const peftPrefix = "base_model.model."

// PEFTConfig is adapter_config.json for a LoRA adapter: the LoraConfig
// fields PEFT reads, in its own key order (sorted).
type PEFTConfig struct {
	AlphaPattern        map[string]float64 `json:"alpha_pattern"`
	BaseModelNameOrPath *string            `json:"base_model_name_or_path"`
	Bias                string             `json:"bias"`
	FanInFanOut         bool               `json:"fan_in_fan_out"`
	InferenceMode       bool               `json:"inference_mode"`
	InitLoraWeights     bool               `json:"init_lora_weights"`
	LayersPattern       *string            `json:"layers_pattern"`
	LayersToTransform   []int              `json:"layers_to_transform"`
	LoraAlpha           float64            `json:"lora_alpha"`
	LoraDropout         float64            `json:"lora_dropout"`
	ModulesToSave       []string           `json:"modules_to_save"`
	PeftType            string             `json:"peft_type"`
	R                   int                `json:"r"`
	RankPattern         map[string]int     `json:"rank_pattern"`
	Revision            *string            `json:"revision"`
	TargetModules       []string           `json:"target_modules"`
	TaskType            string             `json:"task_type"`
	UseDoRA             bool               `json:"use_dora"`
	UseRSLoRA           bool               `json:"use_rslora"`
}

// PEFTOptions are the optional inputs of ExportPEFT.
type PEFTOptions struct {
	// Model is the base GGUF. It is checked against the adapter, and needed
	// where the adapter alone does not say enough: llama's attn_q/attn_k
	// (head counts) and a fused attn_qkv of a model with grouped KV heads.
	Model string
	// BaseModel is written as base_model_name_or_path (a Hugging Face id or
	// path); empty writes null.
	BaseModel string
}

// PEFTResult says what ExportPEFT wrote.
type PEFTResult struct {
	Dir     string
	Config  PEFTConfig
	Modules int    // Hugging Face modules with a LoRA pair
	DType   string // of the safetensors tensors
	Bytes   int64  // both files
	Notes   []string
}

// peftModule is one LoRA pair in PEFT's terms, halves in PEFT's row-major
// layouts: A [rank][in] and B [out][rank] (embedding: A [rank][V], B [E][rank]).
type peftModule struct {
	name      string // Hugging Face module, e.g. encoder.layer.0.attention.self.query
	from      string // the GGUF weight it comes from
	embedding bool
	a, b      []float32
	in, out   int
	rank      int
}

// keys are the module's two tensor names in adapter_model.safetensors.
func (m peftModule) keys() (a, b string) {
	if m.embedding {
		return peftPrefix + m.name + ".lora_embedding_A", peftPrefix + m.name + ".lora_embedding_B"
	}
	return peftPrefix + m.name + ".lora_A.weight", peftPrefix + m.name + ".lora_B.weight"
}

// shapes are the PyTorch shapes of the two tensors.
func (m peftModule) shapes() (a, b []int64) {
	return []int64{int64(m.rank), int64(m.in)}, []int64{int64(m.out), int64(m.rank)}
}

// ExportPEFT writes the GGUF adapter at adapterPath as a PEFT LoRA adapter
// in dir: adapter_config.json and adapter_model.safetensors, with Hugging
// Face module names (tune/hf) and PEFT's layouts, so that PEFT computes
// W + scale·B·A with the scale llama.cpp uses. Weights in llama.cpp's
// rotary order (llama's q and k) get Hugging Face's order back, and a
// fused attn_qkv is split into the q, k and v modules of Hugging Face's
// model (exact: each gets its rows of B and the shared A). Tensors keep
// their F32, F16 or BF16 type; quantized ones are written as F32. Each
// file is written atomically.
func ExportPEFT(adapterPath, dir string, opts PEFTOptions) (*PEFTResult, error) {
	f, err := gguf.Open(adapterPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := inspect(f)
	if err != nil {
		return nil, err
	}
	var base *baseModel
	if opts.Model != "" {
		if base, err = openBase(opts.Model); err != nil {
			return nil, err
		}
		defer base.f.Close()
		if _, err := matchBase(base.f, info); err != nil {
			return nil, err
		}
	}
	res := &PEFTResult{Dir: dir}
	for _, s := range info.Skipped {
		res.Notes = append(res.Notes, fmt.Sprintf("%s not exported: norm adapters are ignored by llama.cpp and have no LoRA form in PEFT", s))
	}
	if q, _, _ := f.String("ragtune.query_side_only"); q == "true" {
		res.Notes = append(res.Notes, "the adapter was trained for queries only: apply it to queries and embed documents with the base model")
	}
	var mods []peftModule
	for _, p := range info.Pairs {
		m, err := toPEFT(f, info.Arch, p, base)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", adapterPath, err)
		}
		mods = append(mods, m...)
	}
	scaling, _, _ := f.String("ragtune.scaling")
	cfg, notes := peftConfig(info, mods, scaling == "rslora", knownModules(info.Arch, mods, base))
	res.Notes = append(res.Notes, notes...)
	if opts.BaseModel != "" {
		cfg.BaseModelNameOrPath = &opts.BaseModel
	}
	res.Config, res.Modules = cfg, len(mods)
	dtype := peftDType(info)
	res.DType = string(dtype)

	st := safetensors.NewBuilder()
	st.SetMetadata("format", "pt") // what PEFT's save_pretrained writes
	for _, m := range mods {
		ka, kb := m.keys()
		sa, sb := m.shapes()
		if err := st.AddFloat32s(ka, dtype, sa, m.a); err != nil {
			return nil, err
		}
		if err := st.AddFloat32s(kb, dtype, sb, m.b); err != nil {
			return nil, err
		}
	}
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	weights, config := filepath.Join(dir, PEFTWeightsFile), filepath.Join(dir, PEFTConfigFile)
	if err := st.WriteFile(weights); err != nil {
		return nil, err
	}
	if err := safefile.WriteBytes(config, append(cfgJSON, '\n')); err != nil {
		return nil, err
	}
	for _, p := range []string{weights, config} {
		if s, err := os.Stat(p); err == nil {
			res.Bytes += s.Size()
		}
	}
	return res, nil
}

// baseModel is the base GGUF an adapter applies to, with the
// hyper-parameters that layouts depend on.
type baseModel struct {
	f  *gguf.File
	hp gguf.Hparams
}

func openBase(path string) (*baseModel, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	hp, err := gguf.ValidateModel(f, "")
	if err != nil {
		f.Close()
		return nil, err
	}
	return &baseModel{f: f, hp: hp}, nil
}

// ropePermuted lists the architectures whose GGUF stores the q and k
// projections in llama.cpp's rotary order (its converter permutes them);
// the others keep Hugging Face's order.
var ropePermuted = map[string]bool{"llama": true}

// mhaOnly lists the architectures without grouped KV heads, whose fused
// qkv splits into three equal parts without looking at the base model.
var mhaOnly = map[string]bool{"bert": true, "nomic-bert": true}

// toPEFT turns one GGUF pair into the PEFT module(s) it is.
func toPEFT(f *gguf.File, arch string, p PairInfo, base *baseModel) ([]peftModule, error) {
	A, err := f.Float32s(p.A.Name)
	if err != nil {
		return nil, err
	}
	B, err := f.Float32s(p.B.Name)
	if err != nil {
		return nil, err
	}
	r := p.Rank
	if p.isEmbedding() {
		name, err := hf.ModuleName(arch, p.Base)
		if err != nil {
			return nil, err
		}
		// GGUF A is [V][r], PEFT's lora_embedding_A [r][V].
		return []peftModule{{name: name, from: p.Base, embedding: true, a: transpose(A, p.Out, r), b: B, in: p.Out, out: p.In, rank: r}}, nil
	}
	kind := kindOf(p.Base)
	if ropePermuted[arch] && (kind == "attn_q" || kind == "attn_k") {
		if base == nil {
			return nil, fmt.Errorf("%s: exporting %s's %s needs the base model (--model): llama.cpp stores its rows in rotary order, and Hugging Face's order comes back only with the head count", p.Base, arch, kind)
		}
		blk := blockOf(p.Base)
		if blk < 0 || blk >= len(base.hp.Heads) {
			return nil, fmt.Errorf("%s is not in a block of the base model", p.Base)
		}
		heads := base.hp.Heads[blk]
		if kind == "attn_k" {
			heads = base.hp.HeadsKV[blk]
		}
		order, err := hf.RopeRowOrder(p.Out, int(heads))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Base, err)
		}
		B = gatherRows(B, r, order)
	}
	name, err := hf.ModuleName(arch, p.Base)
	if err == nil {
		return []peftModule{{name: name, from: p.Base, a: A, b: B, in: p.In, out: p.Out, rank: r}}, nil
	}
	if kind != "attn_qkv" {
		return nil, err
	}
	return splitQKV(arch, p, A, B, base)
}

// splitQKV writes a fused qkv pair as the separate q, k and v modules of a
// Hugging Face model that has them: ΔW's rows for q are B's first rows
// times A, and so on, so each module gets its rows of B and all of A.
func splitQKV(arch string, p PairInfo, A, B []float32, base *baseModel) ([]peftModule, error) {
	blk := blockOf(p.Base)
	var sizes [3]int
	switch {
	case base != nil:
		q := int(base.hp.HeadDimK * base.hp.Heads[blk])
		kv := int(base.hp.KVGQA(blk))
		sizes = [3]int{q, kv, int(base.hp.HeadDimV * base.hp.HeadsKV[blk])}
	case mhaOnly[arch] && p.Out%3 == 0:
		sizes = [3]int{p.Out / 3, p.Out / 3, p.Out / 3}
	default:
		return nil, fmt.Errorf("%s: splitting a fused qkv into Hugging Face's q, k and v needs the base model (--model) for the head counts", p.Base)
	}
	if sizes[0]+sizes[1]+sizes[2] != p.Out {
		return nil, fmt.Errorf("%s: lora_b has %d rows, but q, k and v have %v", p.Base, p.Out, sizes)
	}
	var out []peftModule
	row := 0
	for i, kind := range []string{"attn_q", "attn_k", "attn_v"} {
		part := fmt.Sprintf("blk.%d.%s.weight", blk, kind)
		name, err := hf.ModuleName(arch, part)
		if err != nil {
			return nil, fmt.Errorf("%s: neither the fused tensor nor its part %s has a Hugging Face module: %w", p.Base, part, err)
		}
		n := sizes[i]
		out = append(out, peftModule{name: name, from: p.Base, a: A, b: B[row*p.Rank : (row+n)*p.Rank], in: p.In, out: n, rank: p.Rank})
		row += n
	}
	return out, nil
}

// peftDType keeps the adapter's float type when every tensor has it; F32
// otherwise (quantized or mixed).
func peftDType(info *Info) safetensors.DType {
	types := map[gguf.TensorType]bool{}
	for _, p := range info.Pairs {
		types[p.A.Type], types[p.B.Type] = true, true
	}
	if len(types) == 1 {
		switch {
		case types[gguf.F16]:
			return safetensors.F16
		case types[gguf.BF16]:
			return safetensors.BF16
		}
	}
	return safetensors.F32
}

// peftConfig fills adapter_config.json so that PEFT's scale for every
// module equals llama.cpp's: alpha/r per pair (the user scale alone when
// the GGUF has no alpha). A ragtune rsLoRA adapter stores alpha·√r; it is
// written back as use_rslora with alpha when that float32 alpha gives the
// stored value exactly as training computed it, and as the plain
// alpha·√r otherwise (the same scale).
func peftConfig(info *Info, mods []peftModule, rsLoRA bool, known []string) (PEFTConfig, []string) {
	cfg := PEFTConfig{
		AlphaPattern: map[string]float64{}, RankPattern: map[string]int{},
		Bias: "none", InferenceMode: true, InitLoraWeights: true,
		PeftType: "LORA", TaskType: "FEATURE_EXTRACTION",
		TargetModules: targetModules(mods, known),
	}
	var notes []string
	cfg.R = commonRank(mods)
	for _, m := range mods {
		if m.rank != cfg.R {
			cfg.RankPattern[patternKey(m.name)] = m.rank
		}
	}
	switch alpha := info.Alpha; {
	case alpha == 0:
		// llama.cpp's scale is then 1: alpha = r for every rank.
		cfg.LoraAlpha = float64(cfg.R)
		for _, m := range mods {
			if m.rank != cfg.R {
				cfg.AlphaPattern[patternKey(m.name)] = float64(m.rank)
			}
		}
	case rsLoRA && len(cfg.RankPattern) == 0:
		if a, ok := rsLoRAAlpha(alpha, cfg.R); ok {
			cfg.UseRSLoRA, cfg.LoraAlpha = true, float64(a)
		} else {
			cfg.LoraAlpha = float64(alpha)
			notes = append(notes, fmt.Sprintf("rsLoRA written as standard scaling with alpha %g (= alpha·√r; no float32 alpha gives it exactly): the same scale", alpha))
		}
	default:
		cfg.LoraAlpha = float64(alpha)
	}
	return cfg, notes
}

// rsLoRAAlpha finds the float32 alpha whose training export,
// alpha·float32(√r) in float32 (train.LoRAConfig.ExportAlpha), is stored.
func rsLoRAAlpha(stored float32, r int) (float32, bool) {
	sq := float32(math.Sqrt(float64(r)))
	c := float32(float64(stored) / float64(sq))
	lo, hi := c, c
	for range 4 {
		for _, x := range []float32{lo, hi} {
			if x*sq == stored {
				return x, true
			}
		}
		lo, hi = math.Nextafter32(lo, float32(math.Inf(-1))), math.Nextafter32(hi, float32(math.Inf(1)))
	}
	return 0, false
}

// commonRank is the most frequent rank (the smaller on a tie).
func commonRank(mods []peftModule) int {
	count := map[int]int{}
	for _, m := range mods {
		count[m.rank]++
	}
	best := 0
	for r, n := range count {
		if best == 0 || n > count[best] || (n == count[best] && r < best) {
			best = r
		}
	}
	return best
}

// blockSuffix splits a module name at its block index:
// "encoder.layer.3.attention.self.query" gives ("3", "attention.self.query").
// A module outside the blocks gives ("", name).
func blockSuffix(name string) (block, suffix string) {
	parts := strings.Split(name, ".")
	for i, p := range parts[:len(parts)-1] {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			return p, strings.Join(parts[i+1:], ".")
		}
	}
	return "", name
}

// patternKey names one module in rank_pattern/alpha_pattern from its block
// index on ("3.attention.self.query"): PEFT matches pattern keys against
// the end of module names after a dot, so it picks this block only.
func patternKey(name string) string {
	block, suffix := blockSuffix(name)
	if block == "" {
		return name
	}
	return block + "." + suffix
}

// targetModules lists what PEFT should wrap. PEFT takes a module when its
// name is a target or ends with "." + a target. The per-block names
// ("attention.self.query") are used when every one covers the same blocks
// and none also matches a module left out (bert's "output.dense" would
// match "attention.output.dense" too); the full names otherwise.
func targetModules(mods []peftModule, known []string) []string {
	blocks := map[string][]string{}
	adapted := map[string]bool{}
	var full []string
	for _, m := range mods {
		b, s := blockSuffix(m.name)
		blocks[s] = append(blocks[s], b)
		adapted[m.name] = true
		full = append(full, m.name)
	}
	sort.Strings(full)
	var short []string
	var first []string
	for s, bs := range blocks {
		sort.Strings(bs)
		if first == nil {
			first = bs
		}
		if !slices.Equal(bs, first) {
			return full
		}
		for _, k := range known {
			if !adapted[k] && (k == s || strings.HasSuffix(k, "."+s)) {
				return full
			}
		}
		short = append(short, s)
	}
	sort.Strings(short)
	return short
}

// blockKinds are the linear layers a block may have; their Hugging Face
// names tell targetModules which short names would catch a layer that the
// adapter leaves alone.
var blockKinds = []string{"attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

// knownModules lists the modules of the model that targetModules must not
// catch by accident: every weight of the base when there is one, else the
// usual linear layers of each adapted block.
func knownModules(arch string, mods []peftModule, base *baseModel) []string {
	var names []string
	if base != nil {
		for _, t := range base.f.Tensors {
			if len(t.Dims) == 2 && strings.HasSuffix(t.Name, ".weight") {
				if n, err := hf.ModuleName(arch, t.Name); err == nil {
					names = append(names, n)
				}
			}
		}
		return names
	}
	seen := map[int]bool{}
	for _, m := range mods {
		blk := blockOf(m.from)
		if blk < 0 || seen[blk] {
			continue
		}
		seen[blk] = true
		for _, k := range blockKinds {
			if n, err := hf.ModuleName(arch, fmt.Sprintf("blk.%d.%s.weight", blk, k)); err == nil {
				names = append(names, n)
			}
		}
	}
	return names
}
