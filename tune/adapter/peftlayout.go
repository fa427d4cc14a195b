package adapter

import (
	"strconv"
	"strings"
)

// Layouts of LoRA halves, GGUF against PEFT. Both are row-major here: a
// GGUF tensor of ne [n0, n1] is n1 rows of n0 values, a PyTorch [rows, cols]
// tensor is rows rows of cols values.
//
//	linear     GGUF lora_a ne [in, r] = [r][in]   PEFT lora_A.weight [r, in]   same
//	           GGUF lora_b ne [r, out] = [out][r] PEFT lora_B.weight [out, r]  same rows, maybe reordered
//	embedding  GGUF lora_a ne [r, V] = [V][r]     PEFT lora_embedding_A [r, V] transposed
//	           GGUF lora_b ne [r, E] = [E][r]     PEFT lora_embedding_B [E, r] same

// transpose returns the [cols][rows] transpose of m, a [rows][cols] matrix.
func transpose(m []float32, rows, cols int) []float32 {
	out := make([]float32, len(m))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			out[j*rows+i] = m[i*cols+j]
		}
	}
	return out
}

// gatherRows returns the rows of m (each width values long) in the order
// given: row i of the result is row order[i] of m.
func gatherRows(m []float32, width int, order []int) []float32 {
	out := make([]float32, 0, len(order)*width)
	for _, r := range order {
		out = append(out, m[r*width:(r+1)*width]...)
	}
	return out
}

// inverse turns order[i] = j into inv[j] = i.
func inverse(order []int) []int {
	inv := make([]int, len(order))
	for i, j := range order {
		inv[j] = i
	}
	return inv
}

// blockOf reads N from "blk.N.attn_q.weight"; -1 for a tensor outside the
// blocks.
func blockOf(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '.'), 0)])
	if err != nil {
		return -1
	}
	return n
}
