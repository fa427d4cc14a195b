package adapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safetensors"
	"github.com/ragtune/ragtune/tune/hf"
)

// peftConfigIn is what ImportPEFT reads of adapter_config.json. Fields whose
// type varies between PEFT versions and uses stay raw; other keys are ignored.
type peftConfigIn struct {
	PeftType      string             `json:"peft_type"`
	R             int                `json:"r"`
	LoraAlpha     float64            `json:"lora_alpha"`
	UseRSLoRA     bool               `json:"use_rslora"`
	UseDoRA       bool               `json:"use_dora"`
	FanInFanOut   bool               `json:"fan_in_fan_out"`
	Bias          string             `json:"bias"`
	ModulesToSave json.RawMessage    `json:"modules_to_save"`
	AlphaPattern  map[string]float64 `json:"alpha_pattern"`
}

// ImportResult says what ImportPEFT wrote.
type ImportResult struct {
	Out     string
	Arch    string
	Pairs   int
	Alpha   float32
	Scaling string // "standard" or "rslora"
	Notes   []string
	Bytes   int64
}

// target is where a Hugging Face module's update lands in the base GGUF: a
// whole weight, or one of the q, k, v parts (part 0, 1, 2) of a fused qkv.
type target struct {
	tensor string
	part   int // -1: the whole weight
}

// importedPair is a PEFT module's pair in GGUF layouts with the scale
// PEFT gives it.
type importedPair struct {
	module string
	to     target
	a, b   []float32 // [rank][in], [out][rank]
	in     int
	out    int
	rank   int
	scale  float64
}

// ImportPEFT reads the PEFT LoRA adapter in dir (adapter_config.json,
// adapter_model.safetensors) and writes it as a llama.cpp adapter for the
// base GGUF at modelPath: module names mapped to GGUF weights (tune/hf),
// llama's q and k rows put in llama.cpp's rotary order, q/k/v modules joined
// into a fused attn_qkv where the base has one. alpha is chosen so that
// llama.cpp's alpha/r equals PEFT's scale (alpha/r, or alpha/√r with
// use_rslora: then stored as alpha·√r, as ragtune's own rsLoRA adapters);
// what one alpha cannot express (alpha_pattern, rsLoRA with several ranks)
// is folded into B. An adapter ExportPEFT wrote comes back bit for bit.
func ImportPEFT(dir, outPath, modelPath string) (*ImportResult, error) {
	cfgPath := filepath.Join(dir, PEFTConfigFile)
	cfg, err := readPEFTConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	wPath := filepath.Join(dir, PEFTWeightsFile)
	st, err := safetensors.Open(wPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, binErr := os.Stat(filepath.Join(dir, "adapter_model.bin")); binErr == nil {
				return nil, fmt.Errorf("%s: only adapter_model.bin (a pickle) is there; save the adapter with safe_serialization=True to get %s", dir, PEFTWeightsFile)
			}
		}
		return nil, err
	}
	defer st.Close()
	base, err := openBase(modelPath)
	if err != nil {
		return nil, err
	}
	defer base.f.Close()
	arch := base.hp.Arch
	targets := moduleTargets(arch, base.f)

	halves := map[string]*importedPair{}
	var order []string
	for _, t := range st.Tensors {
		module, half, err := splitPEFTKey(t.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", wPath, err)
		}
		p := halves[module]
		if p == nil {
			to, ok := lookupModule(targets, module)
			if !ok {
				return nil, fmt.Errorf("%s: tensor %q adapts module %q, which %s (%s) has no weight for", wPath, t.Name, module, modelPath, arch)
			}
			p = &importedPair{module: module, to: to}
			halves[module] = p
			order = append(order, module)
		}
		if len(t.Shape) != 2 {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, want 2-D", wPath, t.Name, t.Shape)
		}
		vals, err := st.Float32s(t.Name)
		if err != nil {
			return nil, err
		}
		if half == "A" {
			p.a, p.rank, p.in = vals, int(t.Shape[0]), int(t.Shape[1])
		} else {
			p.b, p.out = vals, int(t.Shape[0])
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%s: no LoRA tensors", wPath)
	}
	res := &ImportResult{Out: outPath, Arch: arch, Scaling: "standard"}
	var pairs []*importedPair
	for _, m := range order {
		p := halves[m]
		if p.a == nil || p.b == nil {
			return nil, fmt.Errorf("%s: module %q has only one of lora_A and lora_B", wPath, m)
		}
		if len(p.b) != p.out*p.rank {
			return nil, fmt.Errorf("%s: module %q: lora_B has %d values, want [%d, %d] (lora_A's rank)", wPath, m, len(p.b), p.out, p.rank)
		}
		if err := fitBase(base, p); err != nil {
			return nil, fmt.Errorf("%s: module %q: %w", wPath, m, err)
		}
		p.scale = peftScale(cfg, m, p.rank)
		pairs = append(pairs, p)
	}

	// One alpha for the file: the config's, as ragtune writes it.
	alpha := float32(cfg.LoraAlpha)
	if cfg.UseRSLoRA {
		alpha = alpha * float32(math.Sqrt(float64(cfg.R)))
		res.Scaling = "rslora"
	}
	out, notes, err := toGGUFPairs(base, pairs, alpha)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	res.Notes = notes
	meta := map[string]string{"ragtune.method": "lora", "ragtune.source": "peft"}
	if res.Scaling == "rslora" {
		meta["ragtune.scaling"] = "rslora"
	}
	if err := Save(outPath, arch, alpha, out, meta); err != nil {
		return nil, err
	}
	res.Pairs, res.Alpha = len(out), alpha
	if s, err := os.Stat(outPath); err == nil {
		res.Bytes = s.Size()
	}
	return res, nil
}

// readPEFTConfig reads adapter_config.json and refuses what a llama.cpp
// LoRA adapter cannot hold, saying why.
func readPEFTConfig(path string) (*peftConfigIn, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg peftConfigIn
	if err := json.Unmarshal(raw, &cfg); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: field %q: %s where %s is expected", path, te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	fail := func(format string, args ...any) (*peftConfigIn, error) {
		return nil, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	switch {
	case cfg.PeftType != "LORA":
		return fail("peft_type is %q: only LORA adapters have a llama.cpp form", cfg.PeftType)
	case cfg.UseDoRA:
		return fail("use_dora is true: DoRA's magnitude vectors have no place in a llama.cpp adapter; merge it in PEFT and convert the merged model")
	case cfg.FanInFanOut:
		return fail("fan_in_fan_out is true (Conv1D weights, GPT-2 style): not a layout of the embedding models ragtune runs")
	case cfg.Bias != "" && cfg.Bias != "none":
		return fail("bias is %q: trained biases have no place in a llama.cpp adapter (it holds LoRA pairs only)", cfg.Bias)
	case len(bytes.TrimSpace(cfg.ModulesToSave)) > 0 && !bytes.Equal(bytes.TrimSpace(cfg.ModulesToSave), []byte("null")) && !bytes.Equal(bytes.TrimSpace(cfg.ModulesToSave), []byte("[]")):
		return fail("modules_to_save is %s: whole trained modules have no place in a llama.cpp adapter", cfg.ModulesToSave)
	case cfg.R < 1:
		return fail("r is %d, want a positive rank", cfg.R)
	case !(cfg.LoraAlpha > 0) || math.IsInf(cfg.LoraAlpha, 0):
		return fail("lora_alpha is %v, want a positive number", cfg.LoraAlpha)
	}
	for k, v := range cfg.AlphaPattern {
		if !(v > 0) || math.IsInf(v, 0) {
			return fail("alpha_pattern[%q] is %v, want a positive number", k, v)
		}
	}
	return &cfg, nil
}

// splitPEFTKey turns "base_model.model.X.lora_A.weight" into (X, "A").
func splitPEFTKey(key string) (module, half string, err error) {
	name := strings.TrimPrefix(key, peftPrefix)
	for _, s := range []struct{ suffix, half string }{
		{".lora_A.weight", "A"}, {".lora_B.weight", "B"},
	} {
		if m, ok := strings.CutSuffix(name, s.suffix); ok && m != "" {
			return m, s.half, nil
		}
	}
	switch {
	case strings.Contains(name, "lora_embedding_"):
		return "", "", fmt.Errorf("tensor %q: token-embedding adapters are not written by ragtune's adapter writer", key)
	case strings.Contains(name, "lora_magnitude_vector"):
		return "", "", fmt.Errorf("tensor %q is a DoRA magnitude, which a llama.cpp adapter cannot hold", key)
	}
	return "", "", fmt.Errorf("tensor %q is not a LoRA half (<module>.lora_A.weight or .lora_B.weight): a llama.cpp adapter holds only LoRA pairs", key)
}

// moduleTargets maps Hugging Face module names to the base's weights; the
// q, k and v modules map to the parts of a fused attn_qkv.
func moduleTargets(arch string, f *gguf.File) map[string]target {
	out := map[string]target{}
	for _, t := range f.Tensors {
		if len(t.Dims) != 2 || !strings.HasSuffix(t.Name, ".weight") {
			continue
		}
		if n, err := hf.ModuleName(arch, t.Name); err == nil {
			out[n] = target{tensor: t.Name, part: -1}
		}
		if kindOf(t.Name) == "attn_qkv" {
			for i, k := range []string{"attn_q", "attn_k", "attn_v"} {
				part := fmt.Sprintf("blk.%d.%s.weight", blockOf(t.Name), k)
				if n, err := hf.ModuleName(arch, part); err == nil {
					if _, taken := out[n]; !taken {
						out[n] = target{tensor: t.Name, part: i}
					}
				}
			}
		}
	}
	return out
}

// lookupModule finds a module, also under a wrapper's prefix that the map
// does not use ("bert.encoder.layer.0..." of BertForMaskedLM, "model.layers..."
// of a causal LM): leading components are dropped until a name matches.
func lookupModule(targets map[string]target, module string) (target, bool) {
	for name := module; ; {
		if t, ok := targets[name]; ok {
			return t, true
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return target{}, false
		}
		name = name[i+1:]
	}
}

// fitBase checks a pair's sizes against the weight (or part) it adapts.
func fitBase(base *baseModel, p *importedPair) error {
	w, _ := base.f.Tensor(p.to.tensor)
	in, out := int(w.Dims[0]), int(w.Dims[1])
	if p.to.part >= 0 {
		sizes, err := qkvSizes(base, p.to.tensor, out)
		if err != nil {
			return err
		}
		out = sizes[p.to.part]
	}
	if p.in != in || p.out != out {
		return fmt.Errorf("lora_A [%d, %d] and lora_B [%d, %d] do not fit %s (in %d, out %d)", p.rank, p.in, p.out, p.rank, p.to.tensor, in, out)
	}
	return nil
}

// qkvSizes are the row counts of q, k and v in a fused qkv weight.
func qkvSizes(base *baseModel, tensor string, rows int) ([3]int, error) {
	blk := blockOf(tensor)
	hp := base.hp
	if blk < 0 || blk >= len(hp.Heads) {
		return [3]int{}, fmt.Errorf("%s is not in a block of the model", tensor)
	}
	s := [3]int{int(hp.HeadDimK * hp.Heads[blk]), int(hp.KVGQA(blk)), int(hp.HeadDimV * hp.HeadsKV[blk])}
	if s[0]+s[1]+s[2] != rows {
		return [3]int{}, fmt.Errorf("%s has %d rows, but q, k and v have %v", tensor, rows, s)
	}
	return s, nil
}

// peftScale is the factor PEFT puts on B·A for a module: alpha/r, or
// alpha/√r with use_rslora, alpha and r from the patterns when one matches.
// PEFT matches a pattern key against the end of the module's name.
func peftScale(cfg *peftConfigIn, module string, rank int) float64 {
	alpha := cfg.LoraAlpha
	if a, ok := patternMatch(cfg.AlphaPattern, module); ok {
		alpha = a
	}
	if cfg.UseRSLoRA {
		return alpha / math.Sqrt(float64(rank))
	}
	return alpha / float64(rank)
}

func patternMatch[V any](pattern map[string]V, module string) (V, bool) {
	keys := make([]string, 0, len(pattern))
	for k := range pattern {
		keys = append(keys, k)
	}
	sort.Strings(keys) // one answer when several keys match
	for _, k := range keys {
		if module == k || strings.HasSuffix(module, "."+k) {
			return pattern[k], true
		}
	}
	var zero V
	return zero, false
}

// toGGUFPairs lays the imported pairs out for a llama.cpp adapter with
// alpha: rotary row order, fused qkv joined, and B scaled where alpha/r
// would not give the pair its PEFT scale.
func toGGUFPairs(base *baseModel, pairs []*importedPair, alpha float32) ([]Pair, []string, error) {
	arch := base.hp.Arch
	var out []Pair
	var notes []string
	fused := map[string][]*importedPair{}
	var fusedOrder []string
	for _, p := range pairs {
		if p.to.part >= 0 {
			if fused[p.to.tensor] == nil {
				fusedOrder = append(fusedOrder, p.to.tensor)
			}
			fused[p.to.tensor] = append(fused[p.to.tensor], p)
			continue
		}
		b := p.b
		if kind := kindOf(p.to.tensor); ropePermuted[arch] && (kind == "attn_q" || kind == "attn_k") {
			heads := base.hp.Heads[blockOf(p.to.tensor)]
			if kind == "attn_k" {
				heads = base.hp.HeadsKV[blockOf(p.to.tensor)]
			}
			order, err := hf.RopeRowOrder(p.out, int(heads))
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", p.module, err)
			}
			b = gatherRows(b, p.rank, inverse(order))
		}
		b, note := fitScale(p.module, b, p.scale, alpha, p.rank)
		notes = append(notes, note...)
		out = append(out, Pair{Base: p.to.tensor, A: p.a, B: b, In: p.in, Out: p.out, Rank: p.rank})
	}
	for _, name := range fusedOrder {
		p, note, err := joinQKV(base, name, fused[name], alpha)
		if err != nil {
			return nil, nil, err
		}
		notes = append(notes, note...)
		out = append(out, p)
	}
	return out, notes, nil
}

// fitScale multiplies B by want/(alpha/rank) unless they agree to float32
// precision (float32 alpha against PEFT's float64 scale).
func fitScale(module string, b []float32, want float64, alpha float32, rank int) ([]float32, []string) {
	have := float64(alpha) / float64(rank)
	f := want / have
	if math.Abs(f-1) < 1e-6 {
		return b, nil
	}
	scaled := make([]float32, len(b))
	for i, x := range b {
		scaled[i] = float32(float64(x) * f)
	}
	return scaled, []string{fmt.Sprintf("%s: PEFT's scale %g differs from alpha/r = %g: B multiplied by %g", module, want, have, f)}
}

// joinQKV makes one fused pair of the q, k and v modules adapting a fused
// weight. With one shared A (ExportPEFT splits a fused pair that way) B's
// rows are stacked: the fused pair is the original one. Otherwise the
// ranks are stacked: A = [A_q; A_k; A_v] and B block-diagonal, which is
// exact too. A missing module adds nothing.
func joinQKV(base *baseModel, tensor string, parts []*importedPair, alpha float32) (Pair, []string, error) {
	w, _ := base.f.Tensor(tensor)
	in, rows := int(w.Dims[0]), int(w.Dims[1])
	sizes, err := qkvSizes(base, tensor, rows)
	if err != nil {
		return Pair{}, nil, err
	}
	offset := [3]int{0, sizes[0], sizes[0] + sizes[1]}
	shared := true
	for _, p := range parts[1:] {
		shared = shared && p.rank == parts[0].rank && p.scale == parts[0].scale && slicesEqualBits(p.a, parts[0].a)
	}
	var notes []string
	if shared {
		r := parts[0].rank
		B := make([]float32, rows*r)
		for _, p := range parts {
			copy(B[offset[p.to.part]*r:], p.b)
		}
		B, notes = fitScale(tensor, B, parts[0].scale, alpha, r)
		return Pair{Base: tensor, A: parts[0].a, B: B, In: in, Out: rows, Rank: r}, notes, nil
	}
	r := 0
	for _, p := range parts {
		r += p.rank
	}
	A := make([]float32, 0, r*in)
	B := make([]float32, rows*r)
	col := 0
	for _, p := range parts {
		A = append(A, p.a...)
		// The fused pair's scale is alpha/r over the stacked rank.
		pb, note := fitScale(p.module, p.b, p.scale, alpha, r)
		notes = append(notes, note...)
		for o := 0; o < p.out; o++ {
			copy(B[(offset[p.to.part]+o)*r+col:], pb[o*p.rank:(o+1)*p.rank])
		}
		col += p.rank
	}
	return Pair{Base: tensor, A: A, B: B, In: in, Out: rows, Rank: r}, notes, nil
}

func slicesEqualBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
