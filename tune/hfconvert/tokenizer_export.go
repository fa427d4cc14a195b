package hfconvert

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
	"github.com/ragtune/ragtune/bindings/safefile"
)

// ggufVocab reads a GGUF file's tokenizer keys back into a vocab.
func ggufVocab(f *gguf.File) (*vocab, error) {
	v := &vocab{Special: map[string]uint32{}, Source: f.Path}
	var ok bool
	var err error
	if v.Model, ok, err = f.String("tokenizer.ggml.model"); err != nil || !ok {
		return nil, fmt.Errorf("%s: no tokenizer.ggml.model: %v", f.Path, err)
	}
	v.Pre, _, _ = f.String("tokenizer.ggml.pre")
	if v.Tokens, ok, err = f.Strings("tokenizer.ggml.tokens"); err != nil || !ok {
		return nil, fmt.Errorf("%s: no tokenizer.ggml.tokens: %v", f.Path, err)
	}
	v.Types, _, err = gguf.LookupArray[int32](f, "tokenizer.ggml.token_type")
	if err != nil {
		return nil, err
	}
	if len(v.Types) != len(v.Tokens) {
		v.Types = make([]int32, len(v.Tokens))
		for i := range v.Types {
			v.Types[i] = tokNormal
		}
	}
	if v.Scores, _, err = gguf.LookupArray[float32](f, "tokenizer.ggml.scores"); err != nil {
		return nil, err
	}
	if v.Merges, _, err = f.Strings("tokenizer.ggml.merges"); err != nil {
		return nil, err
	}
	if v.Charsmap, _, err = gguf.LookupArray[uint8](f, "tokenizer.ggml.precompiled_charsmap"); err != nil {
		return nil, err
	}
	for _, name := range []string{"bos", "eos", "unknown", "seperator", "padding", "cls", "mask"} {
		if id, ok, _ := f.Uint32("tokenizer.ggml." + name + "_token_id"); ok && int(id) < len(v.Tokens) {
			v.Special[name] = id
		}
	}
	for _, k := range []struct {
		key string
		dst **bool
	}{{"add_bos_token", &v.AddBOS}, {"add_eos_token", &v.AddEOS}, {"add_space_prefix", &v.AddSpacePrefix}, {"remove_extra_whitespaces", &v.RemoveSpaces}} {
		if b, ok, _ := f.Bool("tokenizer.ggml." + k.key); ok {
			*k.dst = &b
		}
	}
	return v, nil
}

// exportTokenizer writes the tokenizer in the file Hugging Face uses for
// its kind (tokenizer.json for WordPiece and BPE, tokenizer.model for
// SentencePiece and Unigram) plus tokenizer_config.json; it returns the
// tokenizer's file name.
func exportTokenizer(f *gguf.File, dir string) (string, error) {
	v, err := ggufVocab(f)
	if err != nil {
		return "", err
	}
	ctx, _, _ := f.Uint32(f.Architecture() + ".context_length")
	tc := map[string]any{"model_max_length": ctx}
	keys := map[string]string{"bos": "bos_token", "eos": "eos_token", "unknown": "unk_token", "seperator": "sep_token", "padding": "pad_token", "cls": "cls_token", "mask": "mask_token"}
	for name, key := range keys {
		if id, ok := v.Special[name]; ok {
			tc[key] = v.Tokens[id]
		}
	}
	if v.AddBOS != nil {
		tc["add_bos_token"] = *v.AddBOS
	}
	if v.AddEOS != nil {
		tc["add_eos_token"] = *v.AddEOS
	}
	var file string
	switch v.Model {
	case "bert":
		tc["tokenizer_class"], tc["do_lower_case"] = "BertTokenizer", true
		file = "tokenizer.json"
		err = writeJSON(filepath.Join(dir, file), wordPieceJSON(v))
		if err == nil {
			err = writeVocabTxt(filepath.Join(dir, "vocab.txt"), v)
		}
	case "gpt2":
		tc["tokenizer_class"] = "PreTrainedTokenizerFast"
		file = "tokenizer.json"
		var tj map[string]any
		if tj, err = bpeJSON(v); err == nil {
			err = writeJSON(filepath.Join(dir, file), tj)
		}
	case "llama", "t5":
		m := &spmModel{ModelType: spmBPE, AddDummy: true, RemoveSpaces: true, Charsmap: v.Charsmap}
		if v.Model == "t5" {
			m.ModelType = spmUnigram
			tc["tokenizer_class"] = "XLMRobertaTokenizer"
		} else {
			tc["tokenizer_class"] = "LlamaTokenizer"
		}
		if v.AddSpacePrefix != nil {
			m.AddDummy = *v.AddSpacePrefix
		}
		if v.RemoveSpaces != nil {
			m.RemoveSpaces = *v.RemoveSpaces
		}
		for i, t := range v.Tokens {
			p := spmPiece{Text: t, Type: v.Types[i]}
			if i < len(v.Scores) {
				p.Score = v.Scores[i]
			}
			m.Pieces = append(m.Pieces, p)
		}
		file = "tokenizer.model"
		err = safefile.WriteBytes(filepath.Join(dir, file), encodeSPM(m))
	default:
		return "", fmt.Errorf("%s: tokenizer %q cannot be exported (bert, gpt2, llama and t5 can)", f.Path, v.Model)
	}
	if err != nil {
		return "", err
	}
	return file, writeJSON(filepath.Join(dir, "tokenizer_config.json"), tc)
}

// wordPiece undoes the phantom-space form: "▁x" is a word start "x", any
// other token a continuation "##x"; control and unused tokens stay.
func wordPiece(v *vocab, i int) string {
	t := v.Tokens[i]
	switch {
	case v.Types[i] == tokControl || v.Types[i] == tokUnused:
		return t
	case strings.HasPrefix(t, "\u2581"):
		return strings.TrimPrefix(t, "\u2581")
	}
	return "##" + t
}

func writeVocabTxt(path string, v *vocab) error {
	var sb strings.Builder
	for i := range v.Tokens {
		sb.WriteString(wordPiece(v, i))
		sb.WriteByte('\n')
	}
	return safefile.WriteBytes(path, []byte(sb.String()))
}

// addedTokens lists control and user-defined tokens as tokenizer.json does.
func addedTokens(v *vocab, text func(int) string) []map[string]any {
	var out []map[string]any
	for i := range v.Tokens {
		if v.Types[i] == tokControl || v.Types[i] == tokUserDefined {
			out = append(out, map[string]any{"id": i, "content": text(i), "single_word": false, "lstrip": false,
				"rstrip": false, "normalized": v.Types[i] == tokUserDefined, "special": v.Types[i] == tokControl})
		}
	}
	return out
}

// vocabMap is the model's {"token": id} table without unused padding ids
// (converting again recreates them).
func vocabMap(v *vocab, text func(int) string) map[string]int {
	m := map[string]int{}
	for i := range v.Tokens {
		if v.Types[i] == tokUnused {
			continue
		}
		m[text(i)] = i
	}
	return m
}

func wordPieceJSON(v *vocab) map[string]any {
	tok := func(name, def string) string {
		if id, ok := v.Special[name]; ok {
			return v.Tokens[id]
		}
		return def
	}
	cls, sep := tok("cls", "[CLS]"), tok("seperator", "[SEP]")
	ids := map[string]int{}
	for i, t := range v.Tokens {
		ids[t] = i
	}
	return map[string]any{
		"version":       "1.0",
		"added_tokens":  addedTokens(v, func(i int) string { return wordPiece(v, i) }),
		"normalizer":    map[string]any{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": nil, "lowercase": true},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"post_processor": map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{special(cls, 0), seqPiece("A", 0), special(sep, 0)},
			"pair":   []any{special(cls, 0), seqPiece("A", 0), special(sep, 0), seqPiece("B", 1), special(sep, 1)},
			"special_tokens": map[string]any{
				cls: map[string]any{"id": cls, "ids": []int{ids[cls]}, "tokens": []string{cls}},
				sep: map[string]any{"id": sep, "ids": []int{ids[sep]}, "tokens": []string{sep}},
			},
		},
		"decoder": map[string]any{"type": "WordPiece", "prefix": "##", "cleanup": true},
		"model": map[string]any{"type": "WordPiece", "unk_token": tok("unknown", "[UNK]"), "continuing_subword_prefix": "##",
			"max_input_chars_per_word": 100, "vocab": vocabMap(v, func(i int) string { return wordPiece(v, i) })},
	}
}

func special(id string, typeID int) map[string]any {
	return map[string]any{"SpecialToken": map[string]any{"id": id, "type_id": typeID}}
}

func seqPiece(id string, typeID int) map[string]any {
	return map[string]any{"Sequence": map[string]any{"id": id, "type_id": typeID}}
}

func bpeJSON(v *vocab) (map[string]any, error) {
	var pre map[string]any
	byteLevel := func(regex bool) map[string]any {
		return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex}
	}
	switch v.Pre {
	case "gpt-2":
		pre = byteLevel(true)
	default:
		var regex string
		for _, p := range bprePatterns {
			if p.name == v.Pre {
				regex = p.regex
			}
		}
		if regex == "" {
			return nil, fmt.Errorf("BPE pre-tokenizer %q cannot be exported (gpt-2, llama-bpe and qwen2 can)", v.Pre)
		}
		pre = map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": regex}, "behavior": "Isolated", "invert": false},
			byteLevel(false),
		}}
	}
	text := func(i int) string { return v.Tokens[i] }
	added := addedTokens(v, text)
	m := vocabMap(v, text)
	for _, a := range added {
		delete(m, a["content"].(string))
	}
	return map[string]any{
		"version":        "1.0",
		"added_tokens":   added,
		"normalizer":     nil,
		"pre_tokenizer":  pre,
		"post_processor": byteLevel(false),
		"decoder":        byteLevel(true),
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": m, "merges": v.Merges},
	}, nil
}
