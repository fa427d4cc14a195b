package hf

import "fmt"

// RopeRowOrder is where Hugging Face's rows of a llama q or k projection go
// in llama.cpp's file: order[hfRow] = ggufRow. Hugging Face's rotary
// embedding rotates each head's two halves; llama.cpp's (mode 0) rotates
// adjacent pairs, so its converter interleaves the halves (reshape
// [heads, 2, d/2], swap the last two axes).
func RopeRowOrder(rows, heads int) ([]int, error) {
	if heads < 1 || rows%heads != 0 || (rows/heads)%2 != 0 {
		return nil, fmt.Errorf("%d rows do not split into %d heads of an even size", rows, heads)
	}
	d := rows / heads
	order := make([]int, rows)
	for h := 0; h < heads; h++ {
		for half := 0; half < 2; half++ {
			for j := 0; j < d/2; j++ {
				order[h*d+half*d/2+j] = h*d + 2*j + half
			}
		}
	}
	return order, nil
}
