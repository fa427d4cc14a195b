package gguf

import (
	"encoding/binary"
	"math"
)

// F16ToFloat32 converts IEEE 754 half-precision bits to float32 (exactly).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1F
	man := uint32(h) & 0x3FF
	switch {
	case exp == 0x1F: // inf, NaN
		return math.Float32frombits(sign | 0xFF<<23 | man<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
	case man == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = man × 2^-24, normal as a float32.
	f := float32(man) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// Float32ToF16 converts to half precision with round-to-nearest-even, as
// ggml's FP32_TO_FP16 does (F16C's vcvtps2ph and the portable fallback agree).
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xFF
	man := b & 0x7FFFFF
	if exp == 0xFF { // inf, NaN (keep NaN quiet and non-zero)
		if man != 0 {
			return sign | 0x7E00
		}
		return sign | 0x7C00
	}
	e := exp - 127 + 15
	if e >= 0x1F { // overflow
		return sign | 0x7C00
	}
	if e <= 0 { // subnormal half or zero
		if e < -10 {
			return sign
		}
		m := man | 0x800000 // implicit bit
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | man>>13
	rem := man & 0x1FFF
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, up to inf: correct
	}
	return sign | uint16(half)
}

// EncodeF32 stores floats as little-endian F32 tensor data.
func EncodeF32(src []float32) []byte {
	out := make([]byte, 4*len(src))
	for i, v := range src {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}

// EncodeF16 stores floats as F16 tensor data.
func EncodeF16(src []float32) []byte {
	out := make([]byte, 2*len(src))
	for i, v := range src {
		binary.LittleEndian.PutUint16(out[2*i:], Float32ToF16(v))
	}
	return out
}
