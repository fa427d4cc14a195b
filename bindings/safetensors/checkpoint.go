package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// The file names Hugging Face gives a checkpoint's weights.
const (
	SingleFile = "model.safetensors"
	IndexFile  = "model.safetensors.index.json"
)

// Checkpoint is the weights of a Hugging Face folder: one safetensors file or
// the shards listed by its index. Tensors are read one at a time.
type Checkpoint struct {
	files []*File
	where map[string]int // tensor name -> files index
}

// index is model.safetensors.index.json.
type index struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// OpenCheckpoint opens dir's model.safetensors, or its sharded checkpoint
// through model.safetensors.index.json. Every tensor the index names must be
// in the shard it names, and no tensor may appear in two shards.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	idxPath := filepath.Join(dir, IndexFile)
	raw, err := os.ReadFile(idxPath)
	if errors.Is(err, os.ErrNotExist) {
		single := filepath.Join(dir, SingleFile)
		f, err := Open(single)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s: no %s or %s (only safetensors checkpoints are read)", dir, SingleFile, IndexFile)
			}
			return nil, err
		}
		c := &Checkpoint{files: []*File{f}, where: map[string]int{}}
		for _, t := range f.Tensors {
			c.where[t.Name] = 0
		}
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	var idx index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%s: %v", idxPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: weight_map is missing or empty", idxPath)
	}
	shards := map[string]bool{}
	for name, shard := range idx.WeightMap {
		if !validName(shard) {
			return nil, fmt.Errorf("%s: tensor %q: shard %q is not a file name in the folder", idxPath, name, shard)
		}
		shards[shard] = true
	}
	names := make([]string, 0, len(shards))
	for s := range shards {
		names = append(names, s)
	}
	sort.Strings(names)
	c := &Checkpoint{where: map[string]int{}}
	for i, s := range names {
		f, err := Open(filepath.Join(dir, s))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("%s names shard %s: %w", idxPath, s, err)
		}
		c.files = append(c.files, f)
		for _, t := range f.Tensors {
			if j, dup := c.where[t.Name]; dup {
				c.Close()
				return nil, fmt.Errorf("tensor %q is in both %s and %s", t.Name, c.files[j].Path, f.Path)
			}
			c.where[t.Name] = i
		}
	}
	for name, shard := range idx.WeightMap {
		i, ok := c.where[name]
		if !ok || filepath.Base(c.files[i].Path) != shard {
			c.Close()
			return nil, fmt.Errorf("%s: tensor %q is not in %s", idxPath, name, shard)
		}
	}
	return c, nil
}

// Close closes every shard.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Tensor looks a tensor up in whichever shard holds it.
func (c *Checkpoint) Tensor(name string) (TensorInfo, bool) {
	i, ok := c.where[name]
	if !ok {
		return TensorInfo{}, false
	}
	return c.files[i].Tensor(name)
}

// Names lists every tensor, sorted.
func (c *Checkpoint) Names() []string {
	out := make([]string, 0, len(c.where))
	for n := range c.where {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Data reads one tensor's raw bytes.
func (c *Checkpoint) Data(name string) ([]byte, error) {
	i, ok := c.where[name]
	if !ok {
		return nil, fmt.Errorf("checkpoint has no tensor %q", name)
	}
	return c.files[i].Data(name)
}

// Float32s reads one floating-point tensor as float32.
func (c *Checkpoint) Float32s(name string) ([]float32, error) {
	i, ok := c.where[name]
	if !ok {
		return nil, fmt.Errorf("checkpoint has no tensor %q", name)
	}
	return c.files[i].Float32s(name)
}

// Metadata is the first file's __metadata__ (shards usually repeat it).
func (c *Checkpoint) Metadata() map[string]string {
	if len(c.files) == 0 {
		return nil
	}
	return c.files[0].Metadata
}
