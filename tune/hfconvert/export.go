package hfconvert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safefile"
	"github.com/ragtune/ragtune/bindings/safetensors"
	"github.com/ragtune/ragtune/tune/hf"
)

// ExportOptions configure Export.
type ExportOptions struct {
	DType safetensors.DType // of the written tensors: F32 (default), F16 or BF16
	// Normalize appends a Normalize module (the GGUF does not say whether
	// the model was used with L2-normalised outputs).
	Normalize bool
	Progress  func(done, total int, name string)
}

// ExportReport says what Export wrote.
type ExportReport struct {
	In        string   `json:"in"`
	Out       string   `json:"out"`
	Arch      string   `json:"arch"`
	Tensors   int      `json:"tensors"`
	Pooling   string   `json:"pooling"`
	Tokenizer string   `json:"tokenizer_file"`
	Files     []string `json:"files"`
	Notes     []string `json:"notes,omitempty"`
}

// hfArchitectures is what config.json declares for an exported family.
var hfArchitectures = map[string][2]string{ // architectures[0], model_type
	hf.Bert: {"BertModel", "bert"}, hf.Llama: {"LlamaModel", "llama"}, hf.Qwen3: {"Qwen3Model", "qwen3"},
	hf.NomicBert: {"NomicBertModel", "nomic_bert"}, hf.GemmaEmbedding: {"Gemma3TextModel", "gemma3_text"},
}

// Export writes a (merged) GGUF model as a sentence-transformers folder:
// config.json, model.safetensors, the tokenizer, modules.json, the Pooling
// module and any Dense modules. Converting the folder again gives the same
// tensors: the converter's permutations and shifts are undone here.
func Export(in, outDir string, o ExportOptions) (*ExportReport, error) {
	if o.DType == "" {
		o.DType = safetensors.F32
	}
	if o.DType != safetensors.F32 && o.DType != safetensors.F16 && o.DType != safetensors.BF16 {
		return nil, fmt.Errorf("dtype %s: expected F32, F16 or BF16", o.DType)
	}
	f, err := gguf.Open(in)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if t, _, _ := f.String("general.type"); t == "adapter" {
		return nil, fmt.Errorf("%s is a LoRA adapter: merge it first (ragtune adapter merge), then export the model", in)
	}
	arch := f.Architecture()
	names, ok := hfArchitectures[arch]
	if !ok {
		return nil, fmt.Errorf("%s: architecture %q cannot be exported (ragtune exports %s)", in, arch, strings.Join(hf.Families(), ", "))
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	rep := &ExportReport{In: in, Out: outDir, Arch: arch}
	cfg, err := exportConfig(f, arch, names)
	if err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(outDir, "config.json"), cfg); err != nil {
		return nil, err
	}
	heads, _, _ := f.Uint32(arch + ".attention.head_count")
	headsKV, ok, _ := f.Uint32(arch + ".attention.head_count_kv")
	if !ok {
		headsKV = heads
	}

	// The transformer's tensors, and the Dense projections in their own folders.
	main := safetensors.NewBuilder()
	main.SetMetadata("format", "pt")
	var dense []gguf.TensorInfo
	total := len(f.Tensors)
	done := 0
	progress := func(name string) {
		done++
		if o.Progress != nil {
			o.Progress(done, total, name)
		}
	}
	for _, t := range f.Tensors {
		t := t
		if strings.HasPrefix(t.Name, "dense_") {
			dense = append(dense, t)
			continue
		}
		base, suffix := splitName(t.Name)
		module, err := hf.ModuleName(arch, base)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in, err)
		}
		read := func() ([]float32, error) { return f.Float32s(t.Name) }
		switch {
		case arch == hf.Llama && (base == blkName(t.Name, "attn_q") || base == blkName(t.Name, "attn_k")):
			h := int(heads)
			if strings.HasSuffix(base, "attn_k") {
				h = int(headsKV)
			}
			cols := int(t.Dims[0])
			if len(t.Dims) == 1 {
				cols = 1
			}
			inner := read
			read = func() ([]float32, error) {
				v, err := inner()
				if err != nil {
					return nil, err
				}
				return permuteRows(v, h, cols, true)
			}
		case arch == hf.GemmaEmbedding && strings.HasSuffix(t.Name, "norm.weight"):
			inner := read
			read = func() ([]float32, error) {
				v, err := inner()
				for i := range v {
					v[i]--
				}
				return v, err
			}
		}
		if err := main.Add(module+suffix, o.DType, hfShape(t.Dims), func() ([]byte, error) {
			v, err := read()
			if err != nil {
				return nil, err
			}
			progress(t.Name)
			return safetensors.FromFloat32(o.DType, v)
		}); err != nil {
			return nil, err
		}
		rep.Tensors++
	}
	if err := main.WriteFile(filepath.Join(outDir, safetensors.SingleFile)); err != nil {
		return nil, err
	}
	rep.Files = append(rep.Files, "config.json", safetensors.SingleFile)

	tokFile, err := exportTokenizer(f, outDir)
	if err != nil {
		return nil, err
	}
	rep.Tokenizer = tokFile
	rep.Files = append(rep.Files, tokFile, "tokenizer_config.json")

	pooling := "last"
	if p, ok, _ := f.Uint32(arch + ".pooling_type"); ok {
		pooling = map[uint32]string{0: "none", 1: "mean", 2: "cls", 3: "last"}[p]
	} else if arch != hf.Llama && arch != hf.Qwen3 {
		pooling = "none"
	}
	rep.Pooling = pooling
	mods := []map[string]any{{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}}
	if pooling != "none" && pooling != "" {
		dim, _, _ := f.Uint32(arch + ".embedding_length")
		mode := map[string]string{"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "last": "pooling_mode_lasttoken"}[pooling]
		pc := map[string]any{"word_embedding_dimension": dim, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": false,
			"pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false, "pooling_mode_weightedmean_tokens": false,
			"pooling_mode_lasttoken": false, "include_prompt": true}
		pc[mode] = true
		if err := os.MkdirAll(filepath.Join(outDir, "1_Pooling"), 0o755); err != nil {
			return nil, err
		}
		if err := writeJSON(filepath.Join(outDir, "1_Pooling", "config.json"), pc); err != nil {
			return nil, err
		}
		mods = append(mods, map[string]any{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
		rep.Files = append(rep.Files, "1_Pooling/config.json")
	} else {
		rep.Notes = append(rep.Notes, "the model has no pooling type: modules.json lists the Transformer only")
	}
	sort.Slice(dense, func(i, j int) bool { return dense[i].Name < dense[j].Name })
	for _, t := range dense {
		t := t
		idx := len(mods)
		folder := fmt.Sprintf("%d_Dense", idx)
		if err := os.MkdirAll(filepath.Join(outDir, folder), 0o755); err != nil {
			return nil, err
		}
		b := safetensors.NewBuilder()
		b.SetMetadata("format", "pt")
		if err := b.Add("linear.weight", o.DType, hfShape(t.Dims), func() ([]byte, error) {
			v, err := f.Float32s(t.Name)
			if err != nil {
				return nil, err
			}
			progress(t.Name)
			return safetensors.FromFloat32(o.DType, v)
		}); err != nil {
			return nil, err
		}
		if err := b.WriteFile(filepath.Join(outDir, folder, safetensors.SingleFile)); err != nil {
			return nil, err
		}
		dc := map[string]any{"in_features": t.Dims[0], "out_features": t.Dims[1], "bias": false,
			"activation_function": "torch.nn.modules.linear.Identity"}
		if err := writeJSON(filepath.Join(outDir, folder, "config.json"), dc); err != nil {
			return nil, err
		}
		mods = append(mods, map[string]any{"idx": idx, "name": fmt.Sprint(idx), "path": folder, "type": "sentence_transformers.models.Dense"})
		rep.Files = append(rep.Files, folder+"/config.json", folder+"/"+safetensors.SingleFile)
		rep.Tensors++
	}
	if o.Normalize {
		idx := len(mods)
		folder := fmt.Sprintf("%d_Normalize", idx)
		if err := os.MkdirAll(filepath.Join(outDir, folder), 0o755); err != nil {
			return nil, err
		}
		mods = append(mods, map[string]any{"idx": idx, "name": fmt.Sprint(idx), "path": folder, "type": "sentence_transformers.models.Normalize"})
	}
	if err := writeJSON(filepath.Join(outDir, "modules.json"), mods); err != nil {
		return nil, err
	}
	rep.Files = append(rep.Files, "modules.json")
	return rep, nil
}

// splitName separates ".weight"/".bias".
func splitName(name string) (string, string) {
	for _, s := range []string{".weight", ".bias"} {
		if strings.HasSuffix(name, s) {
			return strings.TrimSuffix(name, s), s
		}
	}
	return name, ""
}

// blkName is "blk.N.<part>" for the block of name.
func blkName(name, part string) string {
	if m := blockRe.FindString(name); m != "" {
		return m + part
	}
	return ""
}

// hfShape reverses ggml's dims into PyTorch's row-major shape.
func hfShape(dims []int64) []int64 {
	out := make([]int64, len(dims))
	for i, d := range dims {
		out[len(dims)-1-i] = d
	}
	return out
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteBytes(path, append(data, '\n'))
}

// exportConfig is config.json for the family, from the GGUF keys.
func exportConfig(f *gguf.File, arch string, names [2]string) (map[string]any, error) {
	u := func(k string) (uint32, error) {
		v, ok, err := f.Uint32(arch + "." + k)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("%s: missing key %s.%s", f.Path, arch, k)
		}
		return v, nil
	}
	fl := func(k string, def float32) float32 {
		if v, ok, _ := f.Float32(arch + "." + k); ok {
			return v
		}
		return def
	}
	var err error
	get := func(k string) uint32 {
		v, e := u(k)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	embd, layers, heads, ff, ctx := get("embedding_length"), get("block_count"), get("attention.head_count"), get("feed_forward_length"), get("context_length")
	if err != nil {
		return nil, err
	}
	vocab := 0
	if toks, ok, _ := f.Strings("tokenizer.ggml.tokens"); ok {
		vocab = len(toks)
	}
	c := map[string]any{"architectures": []string{names[0]}, "model_type": names[1], "vocab_size": vocab, "torch_dtype": "float32"}
	switch arch {
	case hf.Bert:
		types, _, _ := f.Uint32("tokenizer.ggml.token_type_count")
		c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["intermediate_size"] = embd, layers, heads, ff
		c["max_position_embeddings"], c["layer_norm_eps"], c["type_vocab_size"] = ctx, fl("attention.layer_norm_epsilon", 1e-12), max(types, 1)
		c["hidden_act"], c["position_embedding_type"] = "gelu", "absolute"
		if pad, ok, _ := f.Uint32("tokenizer.ggml.padding_token_id"); ok {
			c["pad_token_id"] = pad
		}
	case hf.NomicBert:
		types, _, _ := f.Uint32("tokenizer.ggml.token_type_count")
		c["n_embd"], c["n_layer"], c["n_head"], c["n_inner"], c["n_positions"] = embd, layers, heads, ff, ctx
		c["layer_norm_epsilon"], c["rotary_emb_base"], c["rotary_emb_fraction"] = fl("attention.layer_norm_epsilon", 1e-12), fl("rope.freq_base", 1000), 1.0
		c["activation_function"], c["type_vocab_size"], c["rotary_emb_interleaved"] = "swiglu", max(types, 1), false
	default:
		kv := heads
		if v, ok, _ := f.Uint32(arch + ".attention.head_count_kv"); ok {
			kv = v
		}
		c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"] = embd, layers, heads, kv
		c["intermediate_size"], c["max_position_embeddings"] = ff, ctx
		c["rms_norm_eps"], c["rope_theta"] = fl("attention.layer_norm_rms_epsilon", 1e-6), fl("rope.freq_base", 10000)
		c["hidden_act"], c["tie_word_embeddings"] = "silu", true
		if _, ok := f.Tensor("output.weight"); ok {
			c["tie_word_embeddings"] = false
		}
		if d, ok, _ := f.Uint32(arch + ".attention.key_length"); ok {
			c["head_dim"] = d
		}
		if arch == hf.GemmaEmbedding {
			sw, _, _ := f.Uint32(arch + ".attention.sliding_window")
			c["sliding_window"], c["hidden_activation"], c["use_bidirectional_attention"] = sw, "gelu_pytorch_tanh", true
		}
	}
	return c, nil
}
