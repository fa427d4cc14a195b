package modelinit

import (
	"fmt"

	"github.com/ragtune/ragtune/bindings/gguf"
)

// nomicTensors writes nomic-embed-text's tensors: bert's embeddings
// without a position table, one fused attn_qkv per layer and a SwiGLU FFN,
// none of them with biases (as nomic's converted files have none).
func (m *maker) nomicTensors(vocab int) {
	o := m.o
	E, F := o.Dim, o.FF
	m.matrix("token_embd.weight", E, vocab)
	m.matrixAs("token_types.weight", E, 2, gguf.F32)
	m.vector("token_embd_norm.weight", E, 1)
	m.vector("token_embd_norm.bias", E, 0)
	for l := range o.Layers {
		b := fmt.Sprintf("blk.%d.", l)
		m.matrix(b+"attn_qkv.weight", E, 3*E)
		m.matrix(b+"attn_output.weight", E, E)
		m.vector(b+"attn_output_norm.weight", E, 1)
		m.vector(b+"attn_output_norm.bias", E, 0)
		m.matrix(b+"ffn_up.weight", E, F)
		m.matrix(b+"ffn_gate.weight", E, F)
		m.matrix(b+"ffn_down.weight", F, E)
		m.vector(b+"layer_output_norm.weight", E, 1)
		m.vector(b+"layer_output_norm.bias", E, 0)
	}
}
