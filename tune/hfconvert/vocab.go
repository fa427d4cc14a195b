package hfconvert

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// llama.cpp's token types (llama_token_type).
const (
	tokNormal      = 1
	tokUnknown     = 2
	tokControl     = 3
	tokUserDefined = 4
	tokUnused      = 5
	tokByte        = 6
)

// vocab is a tokenizer in GGUF's terms.
type vocab struct {
	Model   string // tokenizer.ggml.model: bert (WordPiece), llama (SentencePiece), gpt2 (BPE), t5 (Unigram)
	Pre     string // tokenizer.ggml.pre
	Source  string // the file it came from
	Tokens  []string
	Types   []int32
	Scores  []float32 // nil when the tokenizer has none
	Merges  []string
	Special map[string]uint32 // bos, eos, unknown, seperator, padding, cls, mask
	AddBOS  *bool
	AddEOS  *bool
	// SentencePiece/Unigram normalizer settings.
	AddSpacePrefix *bool
	RemoveSpaces   *bool
	Charsmap       []byte
}

// tokenizerJSON is the part of tokenizer.json the converter reads.
type tokenizerJSON struct {
	Model struct {
		Type   string          `json:"type"`
		Vocab  json.RawMessage `json:"vocab"`
		Merges json.RawMessage `json:"merges"`
		UnkID  *int            `json:"unk_id"`
	} `json:"model"`
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
}

// readVocab reads the folder's tokenizer in the order llama.cpp's converter
// prefers for the family: SentencePiece's tokenizer.model for llama and
// gemma, otherwise tokenizer.json, otherwise vocab.txt (WordPiece).
func readVocab(dir, arch string, size int) (*vocab, error) {
	spm := filepath.Join(dir, "tokenizer.model")
	tj := filepath.Join(dir, "tokenizer.json")
	vt := filepath.Join(dir, "vocab.txt")
	var v *vocab
	var err error
	switch {
	case (arch == "llama" || arch == "gemma-embedding") && exists(spm):
		v, err = readSPM(spm)
	case exists(tj):
		v, err = readTokenizerJSON(tj)
	case exists(vt):
		v, err = readVocabTxt(vt)
	case exists(spm):
		v, err = readSPM(spm)
	default:
		return nil, fmt.Errorf("%s: no tokenizer: expected tokenizer.json, tokenizer.model or vocab.txt", dir)
	}
	if err != nil {
		return nil, err
	}
	if err := v.specials(dir); err != nil {
		return nil, err
	}
	if err := v.pad(size); err != nil {
		return nil, err
	}
	if v.Model == "bert" {
		v.phantomSpace()
	}
	if v.Model == "t5" && arch == "bert" && v.AddBOS == nil && v.AddEOS == nil {
		// XLM-RoBERTa frames every text as <s> … </s>.
		yes := true
		v.AddBOS, v.AddEOS = &yes, &yes
	}
	return v, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readVocabTxt(path string) (*vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v := &vocab{Model: "bert", Pre: "default", Source: path}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		tok := strings.TrimRight(sc.Text(), "\r")
		if tok == "" {
			return nil, fmt.Errorf("%s:%d: empty token", path, line)
		}
		v.Tokens = append(v.Tokens, tok)
		v.Types = append(v.Types, tokNormal)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(v.Tokens) == 0 {
		return nil, fmt.Errorf("%s: empty vocabulary", path)
	}
	return v, nil
}

func readSPM(path string) (*vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := parseSPM(data, path)
	if err != nil {
		return nil, err
	}
	v := &vocab{Source: path, AddSpacePrefix: &m.AddDummy, RemoveSpaces: &m.RemoveSpaces}
	switch m.ModelType {
	case spmBPE:
		v.Model, v.Pre = "llama", "default"
	case spmUnigram:
		v.Model, v.Pre, v.Charsmap = "t5", "default", m.Charsmap
	default:
		return nil, fmt.Errorf("%s: SentencePiece model type %d; ragtune converts BPE (2) and Unigram (1) models", path, m.ModelType)
	}
	// SentencePiece piece types are llama.cpp's token types: copied as they are.
	for _, p := range m.Pieces {
		v.Tokens = append(v.Tokens, p.Text)
		v.Scores = append(v.Scores, p.Score)
		v.Types = append(v.Types, p.Type)
	}
	v.Special = map[string]uint32{}
	for i, p := range m.Pieces {
		if p.Type == tokUnknown {
			v.Special["unknown"] = uint32(i)
		}
	}
	return v, nil
}

func readTokenizerJSON(path string) (*vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseTokenizerJSON(data, path)
}

// parseTokenizerJSON reads tokenizer.json's model, added tokens and the
// normalizer and pre-tokenizer settings the converter needs.
func parseTokenizerJSON(data []byte, path string) (*vocab, error) {
	var err error
	var t tokenizerJSON
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	v := &vocab{Source: path, Special: map[string]uint32{}}
	switch t.Model.Type {
	case "WordPiece":
		v.Model, v.Pre = "bert", "default"
		if err := v.fromMap(t.Model.Vocab, path); err != nil {
			return nil, err
		}
	case "BPE":
		v.Model = "gpt2"
		if err := v.fromMap(t.Model.Vocab, path); err != nil {
			return nil, err
		}
		if v.Merges, err = readMerges(t.Model.Merges, path); err != nil {
			return nil, err
		}
		if v.Pre, err = bpePre(t.PreTokenizer, path); err != nil {
			return nil, err
		}
	case "Unigram":
		v.Model, v.Pre = "t5", "default"
		var entries [][2]any
		if err := json.Unmarshal(t.Model.Vocab, &entries); err != nil {
			return nil, fmt.Errorf("%s: model.vocab: Unigram vocab must be [[piece, score], ...]: %v", path, err)
		}
		for i, e := range entries {
			piece, ok1 := e[0].(string)
			score, ok2 := e[1].(float64)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: model.vocab[%d] is not [piece, score]", path, i)
			}
			v.Tokens = append(v.Tokens, piece)
			v.Scores = append(v.Scores, float32(score))
			v.Types = append(v.Types, tokNormal)
		}
		if t.Model.UnkID != nil && *t.Model.UnkID >= 0 && *t.Model.UnkID < len(v.Tokens) {
			v.Types[*t.Model.UnkID] = tokUnknown
			v.Special["unknown"] = uint32(*t.Model.UnkID)
		}
		v.Charsmap, err = precompiledCharsmap(t.Normalizer, path)
		if err != nil {
			return nil, err
		}
		yes := true
		v.AddSpacePrefix, v.RemoveSpaces = &yes, &yes
	default:
		return nil, fmt.Errorf("%s: tokenizer model type %q; ragtune converts WordPiece, BPE and Unigram", path, t.Model.Type)
	}
	if len(v.Tokens) == 0 {
		return nil, fmt.Errorf("%s: model.vocab is empty", path)
	}
	for _, a := range t.AddedTokens {
		if a.ID < 0 || a.ID > len(v.Tokens)+len(t.AddedTokens) {
			return nil, fmt.Errorf("%s: added token %q has id %d outside the vocabulary", path, a.Content, a.ID)
		}
		for len(v.Tokens) <= a.ID {
			v.Tokens = append(v.Tokens, fmt.Sprintf("[PAD%d]", len(v.Tokens)))
			v.Types = append(v.Types, tokUnused)
			if v.Scores != nil {
				v.Scores = append(v.Scores, 0)
			}
		}
		v.Tokens[a.ID] = a.Content
		if a.Special {
			v.Types[a.ID] = tokControl
		} else {
			v.Types[a.ID] = tokUserDefined
		}
	}
	return v, nil
}

// fromMap reads a {"token": id} vocabulary into id order; ids missing from
// it become unused "[PAD<id>]" tokens, as the converter writes them.
func (v *vocab) fromMap(raw json.RawMessage, path string) error {
	var m map[string]int
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: model.vocab must map tokens to ids: %v", path, err)
	}
	n := 0
	for tok, id := range m {
		if id < 0 || id >= len(m)*2+1024 {
			return fmt.Errorf("%s: token %q has id %d, outside the vocabulary", path, tok, id)
		}
		n = max(n, id+1)
	}
	v.Tokens = make([]string, n)
	v.Types = make([]int32, n)
	for i := range v.Tokens {
		v.Tokens[i] = fmt.Sprintf("[PAD%d]", i)
		v.Types[i] = tokUnused
	}
	for tok, id := range m {
		v.Tokens[id] = tok
		v.Types[id] = tokNormal
	}
	return nil
}

// readMerges accepts both spellings: ["a b", ...] and [["a", "b"], ...].
func readMerges(raw json.RawMessage, path string) ([]string, error) {
	var asStrings []string
	if err := json.Unmarshal(raw, &asStrings); err == nil {
		return asStrings, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("%s: model.merges must be strings or pairs: %v", path, err)
	}
	out := make([]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("%s: model.merges[%d] has %d parts, expected 2", path, i, len(p))
		}
		out[i] = p[0] + " " + p[1]
	}
	return out, nil
}

// Pre-tokenizer regexes of the BPE families ragtune converts, and the
// tokenizer.ggml.pre names llama.cpp gives them.
var bprePatterns = []struct{ name, regex string }{
	{"llama-bpe", `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
	{"qwen2", `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
}

// bpePre names the pre-tokenizer: a Split regex llama.cpp knows, or plain
// byte-level (GPT-2's own regex).
func bpePre(raw json.RawMessage, path string) (string, error) {
	var regexes []string
	byteLevel := false
	var walk func(any)
	walk = func(n any) {
		switch x := n.(type) {
		case map[string]any:
			if x["type"] == "ByteLevel" {
				byteLevel = true
			}
			if p, ok := x["pattern"].(map[string]any); ok {
				if r, ok := p["Regex"].(string); ok {
					regexes = append(regexes, r)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	var tree any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &tree); err != nil {
			return "", fmt.Errorf("%s: pre_tokenizer: %v", path, err)
		}
	}
	walk(tree)
	for _, r := range regexes {
		for _, p := range bprePatterns {
			if r == p.regex {
				return p.name, nil
			}
		}
	}
	if len(regexes) == 0 && byteLevel {
		return "gpt-2", nil
	}
	return "", fmt.Errorf("%s: BPE pre-tokenizer not recognised (regexes %q); ragtune knows GPT-2's byte-level, Llama 3's and Qwen2/3's", path, regexes)
}

// precompiledCharsmap finds the Precompiled normalizer's table.
func precompiledCharsmap(raw json.RawMessage, path string) ([]byte, error) {
	var found string
	var walk func(any)
	walk = func(n any) {
		switch x := n.(type) {
		case map[string]any:
			if x["type"] == "Precompiled" {
				found, _ = x["precompiled_charsmap"].(string)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	var tree any
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &tree); err != nil {
			return nil, fmt.Errorf("%s: normalizer: %v", path, err)
		}
	}
	walk(tree)
	if found == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(found)
	if err != nil {
		return nil, fmt.Errorf("%s: precompiled_charsmap: %v", path, err)
	}
	return b, nil
}

// specials resolves the special token ids from tokenizer_config.json (token
// strings) and config.json (ids), as gguf-py's SpecialVocab does.
func (v *vocab) specials(dir string) error {
	if v.Special == nil {
		v.Special = map[string]uint32{}
	}
	ids := map[string]int{}
	for i, t := range v.Tokens {
		if _, dup := ids[t]; !dup {
			ids[t] = i
		}
	}
	tc := map[string]any{}
	path := filepath.Join(dir, "tokenizer_config.json")
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &tc); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	keys := map[string]string{"bos": "bos_token", "eos": "eos_token", "unknown": "unk_token", "seperator": "sep_token", "padding": "pad_token", "cls": "cls_token", "mask": "mask_token"}
	for name, key := range keys {
		text, _ := tc[key].(string)
		if m, ok := tc[key].(map[string]any); ok {
			text, _ = m["content"].(string)
		}
		if id, ok := ids[text]; ok && text != "" {
			v.Special[name] = uint32(id)
			if v.Types[id] == tokNormal {
				v.Types[id] = tokControl
			}
		}
	}
	if c, err := readConfig(dir); err == nil {
		for name, key := range map[string]string{"bos": "bos_token_id", "eos": "eos_token_id", "padding": "pad_token_id"} {
			if _, have := v.Special[name]; have {
				continue
			}
			if id, ok, err := c.integer(key); err == nil && ok && id < len(v.Tokens) {
				v.Special[name] = uint32(id)
			}
		}
	}
	for _, k := range []struct {
		key string
		dst **bool
	}{{"add_bos_token", &v.AddBOS}, {"add_eos_token", &v.AddEOS}} {
		if b, ok := tc[k.key].(bool); ok {
			*k.dst = &b
		}
	}
	if v.Model == "bert" {
		// WordPiece has no BOS/EOS: llama.cpp reads [CLS] as BOS and [SEP] as the separator.
		for _, d := range [][2]string{{"bos", "cls"}, {"eos", "seperator"}} {
			if _, ok := v.Special[d[0]]; !ok {
				if id, ok := v.Special[d[1]]; ok {
					v.Special[d[0]] = id
				}
			}
		}
		for _, name := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
			if id, ok := ids[name]; ok {
				v.Types[id] = tokControl
			}
		}
		for name, tok := range map[string]string{"unknown": "[UNK]", "seperator": "[SEP]", "padding": "[PAD]", "cls": "[CLS]", "mask": "[MASK]", "bos": "[CLS]", "eos": "[SEP]"} {
			if _, ok := v.Special[name]; !ok {
				if id, ok := ids[tok]; ok {
					v.Special[name] = uint32(id)
				}
			}
		}
	}
	return nil
}

// pad grows the vocabulary to the embedding table's rows (checkpoints often
// round vocab_size up) with unused "[PAD<id>]" tokens.
func (v *vocab) pad(rows int) error {
	if rows > 0 && len(v.Tokens) > rows {
		return fmt.Errorf("%s: %d tokens but the embedding table has %d rows", v.Source, len(v.Tokens), rows)
	}
	for len(v.Tokens) < rows {
		v.Tokens = append(v.Tokens, fmt.Sprintf("[PAD%d]", len(v.Tokens)))
		v.Types = append(v.Types, tokUnused)
		if v.Scores != nil {
			v.Scores = append(v.Scores, 0)
		}
	}
	return nil
}

// phantomSpace rewrites a WordPiece vocabulary as llama.cpp's WPM tokenizer
// reads it: control tokens verbatim, "##x" as "x", any other token with "▁".
func (v *vocab) phantomSpace() {
	for i, t := range v.Tokens {
		switch {
		case v.Types[i] == tokControl || v.Types[i] == tokUnused:
		case strings.HasPrefix(t, "##"):
			v.Tokens[i] = t[2:]
		default:
			v.Tokens[i] = "\u2581" + t
		}
	}
}

// set writes the vocabulary's keys.
func (v *vocab) set(b *gguf.Builder) {
	b.MustSet("tokenizer.ggml.model", gguf.Of(v.Model))
	b.MustSet("tokenizer.ggml.pre", gguf.Of(v.Pre))
	b.MustSet("tokenizer.ggml.tokens", gguf.ArrayOf(v.Tokens))
	if v.Scores != nil {
		b.MustSet("tokenizer.ggml.scores", gguf.ArrayOf(v.Scores))
	}
	b.MustSet("tokenizer.ggml.token_type", gguf.ArrayOf(v.Types))
	if len(v.Merges) > 0 {
		b.MustSet("tokenizer.ggml.merges", gguf.ArrayOf(v.Merges))
	}
	for _, name := range []string{"bos", "eos", "unknown", "seperator", "padding", "cls", "mask"} {
		if id, ok := v.Special[name]; ok {
			b.MustSet("tokenizer.ggml."+name+"_token_id", gguf.Of(id))
		}
	}
	if v.AddBOS != nil {
		b.MustSet("tokenizer.ggml.add_bos_token", gguf.Of(*v.AddBOS))
	}
	if v.AddEOS != nil {
		b.MustSet("tokenizer.ggml.add_eos_token", gguf.Of(*v.AddEOS))
	}
	if v.AddSpacePrefix != nil {
		b.MustSet("tokenizer.ggml.add_space_prefix", gguf.Of(*v.AddSpacePrefix))
	}
	if v.RemoveSpaces != nil && v.Model == "t5" {
		b.MustSet("tokenizer.ggml.remove_extra_whitespaces", gguf.Of(*v.RemoveSpaces))
	}
	if len(v.Charsmap) > 0 {
		b.MustSet("tokenizer.ggml.precompiled_charsmap", gguf.ArrayOf(v.Charsmap))
	}
}
