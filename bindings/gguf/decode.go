package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Float32s reads the named tensor and converts it to float32: F32, F16 and
// BF16 directly; Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K by ggml's
// dequantization formulas.
func (f *File) Float32s(name string) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", f.name(), name)
	}
	raw, err := f.TensorData(name)
	if err != nil {
		return nil, err
	}
	out, err := Decode(t.Type, raw, t.Elements())
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", f.name(), name, err)
	}
	return out, nil
}

// Decode converts n elements of type t encoded in raw to float32.
func Decode(t TensorType, raw []byte, n int64) ([]float32, error) {
	bs := int64(t.BlockSize())
	if bs == 0 || n%bs != 0 {
		return nil, fmt.Errorf("cannot decode %d elements of type %s", n, t)
	}
	if want := n / bs * int64(t.TypeSize()); int64(len(raw)) != want {
		return nil, fmt.Errorf("%d elements of type %s need %d bytes, got %d", n, t, want, len(raw))
	}
	dec, ok := decoders[t]
	if !ok {
		return nil, fmt.Errorf("decoding type %s to float32 is not supported", t)
	}
	out := make([]float32, n)
	ts := t.TypeSize()
	for b := int64(0); b < n/bs; b++ {
		dec(out[b*bs:(b+1)*bs], raw[b*int64(ts):(b+1)*int64(ts)])
	}
	return out, nil
}

// decoders turn one block into BlockSize floats. Layouts follow ggml's
// block_* structs (ggml-common.h) and dequantize_row_* (ggml-quants.c).
var decoders = map[TensorType]func(dst []float32, b []byte){
	F32: func(dst []float32, b []byte) { dst[0] = math.Float32frombits(binary.LittleEndian.Uint32(b)) },
	F16: func(dst []float32, b []byte) { dst[0] = F16ToFloat32(binary.LittleEndian.Uint16(b)) },
	BF16: func(dst []float32, b []byte) {
		dst[0] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16)
	},
	Q8_0: decodeQ8_0,
	Q4_0: decodeQ4_0,
	Q4_1: decodeQ4_1,
	Q5_0: decodeQ5_0,
	Q5_1: decodeQ5_1,
	Q4_K: decodeQ4_K,
	Q6_K: decodeQ6_K,
}

func half(b []byte) float32 { return F16ToFloat32(binary.LittleEndian.Uint16(b)) }

// block_q8_0: f16 d, 32 × int8.
func decodeQ8_0(dst []float32, b []byte) {
	d := half(b)
	for i := range 32 {
		dst[i] = d * float32(int8(b[2+i]))
	}
}

// block_q4_0: f16 d, 16 bytes; low nibbles are elements 0..15, high 16..31.
func decodeQ4_0(dst []float32, b []byte) {
	d := half(b)
	for j := range 16 {
		q := b[2+j]
		dst[j] = d * float32(int(q&0xF)-8)
		dst[j+16] = d * float32(int(q>>4)-8)
	}
}

// block_q4_1: f16 d, f16 m, 16 bytes of nibbles.
func decodeQ4_1(dst []float32, b []byte) {
	d, m := half(b), half(b[2:])
	for j := range 16 {
		q := b[4+j]
		dst[j] = float32(q&0xF)*d + m
		dst[j+16] = float32(q>>4)*d + m
	}
}

// block_q5_0: f16 d, 4 bytes of fifth bits, 16 bytes of nibbles.
func decodeQ5_0(dst []float32, b []byte) {
	d := half(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	for j := range 16 {
		q := b[6+j]
		h0 := byte((qh>>j)<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		dst[j] = d * float32(int((q&0xF)|h0)-16)
		dst[j+16] = d * float32(int((q>>4)|h1)-16)
	}
}

// block_q5_1: f16 d, f16 m, 4 bytes of fifth bits, 16 bytes of nibbles.
func decodeQ5_1(dst []float32, b []byte) {
	d, m := half(b), half(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	for j := range 16 {
		q := b[8+j]
		h0 := byte((qh>>j)<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		dst[j] = float32((q&0xF)|h0)*d + m
		dst[j+16] = float32((q>>4)|h1)*d + m
	}
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j from block_q4_K's
// 12 packed bytes (get_scale_min_k4 in ggml).
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

// block_q4_K: f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles;
// each 32-byte chunk holds 64 elements (low nibbles first).
func decodeQ4_K(dst []float32, b []byte) {
	d, dmin := half(b), half(b[2:])
	scales, qs := b[4:16], b[16:144]
	for c := range 4 {
		sc1, m1 := scaleMinK4(2*c, scales)
		sc2, m2 := scaleMinK4(2*c+1, scales)
		d1, off1 := d*float32(sc1), dmin*float32(m1)
		d2, off2 := d*float32(sc2), dmin*float32(m2)
		q := qs[32*c : 32*c+32]
		y := dst[64*c:]
		for l := range 32 {
			y[l] = d1*float32(q[l]&0xF) - off1
			y[l+32] = d2*float32(q[l]>>4) - off2
		}
	}
}

// block_q6_K: 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8
// scales, f16 d.
func decodeQ6_K(dst []float32, b []byte) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := half(b[208:])
	for n := range 2 {
		l4, h4, s8, y := ql[64*n:], qh[32*n:], sc[8*n:], dst[128*n:]
		for l := range 32 {
			is := l / 16
			q1 := int((l4[l]&0xF)|((h4[l]>>0)&3)<<4) - 32
			q2 := int((l4[l+32]&0xF)|((h4[l]>>2)&3)<<4) - 32
			q3 := int((l4[l]>>4)|((h4[l]>>4)&3)<<4) - 32
			q4 := int((l4[l+32]>>4)|((h4[l]>>6)&3)<<4) - 32
			y[l] = d * float32(int8(s8[is])) * float32(q1)
			y[l+32] = d * float32(int8(s8[is+2])) * float32(q2)
			y[l+64] = d * float32(int8(s8[is+4])) * float32(q3)
			y[l+96] = d * float32(int8(s8[is+6])) * float32(q4)
		}
	}
}
