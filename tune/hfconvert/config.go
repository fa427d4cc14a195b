// Package hfconvert turns a Hugging Face transformers / sentence-transformers
// folder into a GGUF model in the form llama.cpp's own converter
// (convert_hf_to_gguf.py) writes for the family, and a GGUF model back into a
// sentence-transformers folder. Tensors stream one at a time in both
// directions, so memory stays bounded by the largest tensor.
package hfconvert

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ragtune/ragtune/tune/hf"
)

// config is config.json, kept as raw values: the families spell the same
// hyperparameter differently (hidden_size, n_embd, ...).
type config struct {
	path string
	raw  map[string]any
}

func readConfig(dir string) (*config, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no config.json: not a Hugging Face model folder", dir)
		}
		return nil, err
	}
	c := &config{path: path}
	if err := json.Unmarshal(data, &c.raw); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if c.raw == nil {
		return nil, fmt.Errorf("%s: not a JSON object", path)
	}
	return c, nil
}

// integer reads the first present key of keys as a non-negative integer.
func (c *config) integer(keys ...string) (int, bool, error) {
	for _, k := range keys {
		v, ok := c.raw[k]
		if !ok || v == nil {
			continue
		}
		f, isNum := v.(float64)
		if !isNum || f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
			return 0, false, fmt.Errorf("%s: %q is %v, expected a non-negative integer", c.path, k, v)
		}
		return int(f), true, nil
	}
	return 0, false, nil
}

// need is integer for a required hyperparameter.
func (c *config) need(keys ...string) (int, error) {
	n, ok, err := c.integer(keys...)
	if err != nil {
		return 0, err
	}
	if !ok || n == 0 {
		return 0, fmt.Errorf("%s: missing %s (a positive integer)", c.path, strings.Join(keys, " or "))
	}
	return n, nil
}

// number reads the first present key as a float, or def.
func (c *config) number(def float64, keys ...string) (float64, error) {
	for _, k := range keys {
		v, ok := c.raw[k]
		if !ok || v == nil {
			continue
		}
		f, isNum := v.(float64)
		if !isNum {
			return 0, fmt.Errorf("%s: %q is %v, expected a number", c.path, k, v)
		}
		return f, nil
	}
	return def, nil
}

func (c *config) str(key string) string {
	s, _ := c.raw[key].(string)
	return s
}

func (c *config) boolean(key string, def bool) bool {
	if b, ok := c.raw[key].(bool); ok {
		return b
	}
	return def
}

// architectures maps config.json's "architectures" to a family.
var architectures = map[string]string{
	"BertModel": hf.Bert, "BertForMaskedLM": hf.Bert, "XLMRobertaModel": hf.Bert, "RobertaModel": hf.Bert,
	"LlamaModel": hf.Llama, "LlamaForCausalLM": hf.Llama, "MistralModel": hf.Llama, "MistralForCausalLM": hf.Llama,
	"Qwen3Model": hf.Qwen3, "Qwen3ForCausalLM": hf.Qwen3,
	"NomicBertModel":  hf.NomicBert,
	"Gemma3TextModel": hf.GemmaEmbedding,
}

// family reads the architecture from config.json.
func (c *config) family() (arch, declared string, err error) {
	list, _ := c.raw["architectures"].([]any)
	var names []string
	for _, a := range list {
		s, _ := a.(string)
		if fam, ok := architectures[s]; ok {
			return fam, s, nil
		}
		names = append(names, fmt.Sprintf("%q", s))
	}
	known := make([]string, 0, len(architectures))
	for k := range architectures {
		known = append(known, k)
	}
	sort.Strings(known)
	if len(names) == 0 {
		return "", "", fmt.Errorf("%s: no \"architectures\" list; ragtune converts %s", c.path, strings.Join(known, ", "))
	}
	return "", "", fmt.Errorf("%s: unknown architecture %s; ragtune converts %s", c.path, strings.Join(names, ", "), strings.Join(known, ", "))
}

// stModules is what a sentence-transformers folder adds after the
// transformer: pooling, optional Dense projections, normalisation.
type stModules struct {
	Pooling   string   // "mean", "cls", "last" or "" (no Pooling module)
	Dense     []string // folders of Dense modules, in order
	Normalize bool
}

// Pooling names and their llama_pooling_type values.
var poolingTypes = map[string]uint32{"none": 0, "mean": 1, "cls": 2, "last": 3}

func readModules(dir string) (stModules, error) {
	var st stModules
	path := filepath.Join(dir, "modules.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	var mods []struct {
		Idx  int    `json:"idx"`
		Name string `json:"name"`
		Path string `json:"path"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &mods); err != nil {
		return st, fmt.Errorf("%s: %v", path, err)
	}
	sort.SliceStable(mods, func(i, j int) bool { return mods[i].Idx < mods[j].Idx })
	for i, m := range mods {
		kind := m.Type[strings.LastIndexByte(m.Type, '.')+1:]
		if m.Path != "" && (filepath.IsAbs(m.Path) || strings.Contains(m.Path, "..")) {
			return st, fmt.Errorf("%s: module %d: path %q leaves the folder", path, i, m.Path)
		}
		switch kind {
		case "Transformer":
		case "Pooling":
			if st.Pooling, err = readPooling(filepath.Join(dir, m.Path, "config.json")); err != nil {
				return st, err
			}
		case "Dense":
			st.Dense = append(st.Dense, m.Path)
		case "Normalize":
			st.Normalize = true
		default:
			return st, fmt.Errorf("%s: module %d has type %q; ragtune converts Transformer, Pooling, Dense and Normalize modules", path, i, m.Type)
		}
	}
	return st, nil
}

// readPooling reads 1_Pooling/config.json: exactly one mode must be on.
func readPooling(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("Pooling module: %w", err)
	}
	var modes map[string]any
	if err := json.Unmarshal(data, &modes); err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	names := map[string]string{
		"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_lasttoken": "last",
		"pooling_mode_max_tokens": "", "pooling_mode_mean_sqrt_len_tokens": "", "pooling_mode_weightedmean_tokens": "",
	}
	var on []string
	for k, v := range modes {
		if b, _ := v.(bool); b && strings.HasPrefix(k, "pooling_mode_") {
			on = append(on, k)
		}
	}
	sort.Strings(on)
	if len(on) != 1 {
		return "", fmt.Errorf("%s: %d pooling modes are on (%s); llama.cpp pools one way: mean, cls or last token", path, len(on), strings.Join(on, ", "))
	}
	name, known := names[on[0]]
	if !known || name == "" {
		return "", fmt.Errorf("%s: %s has no llama.cpp equivalent (mean, cls or last token)", path, on[0])
	}
	return name, nil
}
