package bindings

// #include "ggml.h"
// static void ragtune_to_float(ggml_to_float_t f, const void *x, float *y, int64_t n) { f(x, y, n); }
import "C"

import (
	"fmt"
	"unsafe"
)

// Quantize encodes nrows rows of ncols float32 values as typ (F16, Q8_0,
// Q4_0, Q4_K, ...) with ggml's own reference quantizers, so the bytes equal
// what llama.cpp's tools would write.
func Quantize(typ Type, src []float32, nrows, ncols int) ([]byte, error) {
	if nrows < 0 || ncols <= 0 || len(src) != nrows*ncols {
		return nil, fmt.Errorf("quantize: %d values for %d rows of %d", len(src), nrows, ncols)
	}
	if typ < 0 || typ >= C.GGML_TYPE_COUNT || typ.BlockSize() <= 0 || typ.TypeSize() == 0 {
		return nil, fmt.Errorf("quantize: unknown type %d", int(typ))
	}
	if bs := typ.BlockSize(); ncols%bs != 0 {
		return nil, fmt.Errorf("quantize to %s: row length %d is not a multiple of the block size %d", typ, ncols, bs)
	}
	if typ == TypeF32 {
		out := make([]byte, 4*len(src))
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(src))), len(out)))
		return out, nil
	}
	if bool(C.ggml_quantize_requires_imatrix(C.enum_ggml_type(typ))) {
		return nil, fmt.Errorf("quantize to %s needs an importance matrix", typ)
	}
	out := make([]byte, typ.RowSize(ncols)*nrows)
	if nrows == 0 {
		return out, nil
	}
	C.ggml_quantize_init(C.enum_ggml_type(typ))
	n := C.ggml_quantize_chunk(C.enum_ggml_type(typ), (*C.float)(unsafe.Pointer(&src[0])), unsafe.Pointer(&out[0]), 0, C.int64_t(nrows), C.int64_t(ncols), nil)
	if int(n) != len(out) {
		return nil, fmt.Errorf("quantize to %s wrote %d bytes, want %d", typ, int(n), len(out))
	}
	return out, nil
}

// Dequantize decodes nrows rows of ncols elements of typ back to float32.
func Dequantize(typ Type, data []byte, nrows, ncols int) ([]float32, error) {
	if typ < 0 || typ >= C.GGML_TYPE_COUNT || typ.BlockSize() <= 0 || ncols%typ.BlockSize() != 0 {
		return nil, fmt.Errorf("dequantize: bad type %v or row length %d", typ, ncols)
	}
	if len(data) != typ.RowSize(ncols)*nrows {
		return nil, fmt.Errorf("dequantize %s: %d bytes for %d rows of %d", typ, len(data), nrows, ncols)
	}
	out := make([]float32, nrows*ncols)
	if len(out) == 0 {
		return out, nil
	}
	if typ == TypeF32 {
		copy(out, unsafe.Slice((*float32)(unsafe.Pointer(&data[0])), len(out)))
		return out, nil
	}
	traits := C.ggml_get_type_traits(C.enum_ggml_type(typ))
	if traits.to_float == nil {
		return nil, fmt.Errorf("dequantize: ggml cannot convert %s to f32", typ)
	}
	C.ragtune_to_float(traits.to_float, unsafe.Pointer(&data[0]), (*C.float)(&out[0]), C.int64_t(len(out)))
	return out, nil
}
