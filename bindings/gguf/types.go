package gguf

import "fmt"

// ValueType is the type of a metadata value (enum gguf_type in ggml's gguf.h).
type ValueType uint32

// Metadata value types, numbered as in gguf.h.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// scalarSize is the encoded size of a fixed-size scalar, 0 for strings,
// arrays and unknown types.
func (t ValueType) scalarSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// TensorType is a ggml tensor element type (enum ggml_type in ggml.h).
type TensorType uint32

// Tensor types, numbered as in ggml.h. Numbers 4, 5 and 31..33, 36..38 were
// removed from ggml and are refused by its reader.
const (
	F32     TensorType = 0
	F16     TensorType = 1
	Q4_0    TensorType = 2
	Q4_1    TensorType = 3
	Q5_0    TensorType = 6
	Q5_1    TensorType = 7
	Q8_0    TensorType = 8
	Q8_1    TensorType = 9
	Q2_K    TensorType = 10
	Q3_K    TensorType = 11
	Q4_K    TensorType = 12
	Q5_K    TensorType = 13
	Q6_K    TensorType = 14
	Q8_K    TensorType = 15
	IQ2_XXS TensorType = 16
	IQ2_XS  TensorType = 17
	IQ3_XXS TensorType = 18
	IQ1_S   TensorType = 19
	IQ4_NL  TensorType = 20
	IQ3_S   TensorType = 21
	IQ2_S   TensorType = 22
	IQ4_XS  TensorType = 23
	I8      TensorType = 24
	I16     TensorType = 25
	I32     TensorType = 26
	I64     TensorType = 27
	F64     TensorType = 28
	IQ1_M   TensorType = 29
	BF16    TensorType = 30
	TQ1_0   TensorType = 34
	TQ2_0   TensorType = 35
	MXFP4   TensorType = 39

	tensorTypeCount = 40
)

// typeTraits mirrors ggml's type_traits table: elements per block and bytes
// per block. A zero block size marks a number ggml no longer accepts.
var typeTraits = [tensorTypeCount]struct {
	name      string
	blockSize int
	typeSize  int
}{
	F32: {"f32", 1, 4}, F16: {"f16", 1, 2},
	Q4_0: {"q4_0", 32, 18}, Q4_1: {"q4_1", 32, 20},
	Q5_0: {"q5_0", 32, 22}, Q5_1: {"q5_1", 32, 24},
	Q8_0: {"q8_0", 32, 34}, Q8_1: {"q8_1", 32, 36},
	Q2_K: {"q2_K", 256, 84}, Q3_K: {"q3_K", 256, 110}, Q4_K: {"q4_K", 256, 144},
	Q5_K: {"q5_K", 256, 176}, Q6_K: {"q6_K", 256, 210}, Q8_K: {"q8_K", 256, 292},
	IQ2_XXS: {"iq2_xxs", 256, 66}, IQ2_XS: {"iq2_xs", 256, 74}, IQ3_XXS: {"iq3_xxs", 256, 98},
	IQ1_S: {"iq1_s", 256, 50}, IQ4_NL: {"iq4_nl", 32, 18}, IQ3_S: {"iq3_s", 256, 110},
	IQ2_S: {"iq2_s", 256, 82}, IQ4_XS: {"iq4_xs", 256, 136},
	I8: {"i8", 1, 1}, I16: {"i16", 1, 2}, I32: {"i32", 1, 4}, I64: {"i64", 1, 8}, F64: {"f64", 1, 8},
	IQ1_M: {"iq1_m", 256, 56}, BF16: {"bf16", 1, 2},
	TQ1_0: {"tq1_0", 256, 54}, TQ2_0: {"tq2_0", 256, 66}, MXFP4: {"mxfp4", 32, 17},
}

// Valid reports whether ggml accepts t in a GGUF file.
func (t TensorType) Valid() bool { return t < tensorTypeCount && typeTraits[t].blockSize > 0 }

func (t TensorType) String() string {
	if t.Valid() {
		return typeTraits[t].name
	}
	return fmt.Sprintf("ggml_type(%d)", uint32(t))
}

// BlockSize is the number of elements one block of t encodes (1 for plain types).
func (t TensorType) BlockSize() int {
	if !t.Valid() {
		return 0
	}
	return typeTraits[t].blockSize
}

// TypeSize is the number of bytes of one block of t.
func (t TensorType) TypeSize() int {
	if !t.Valid() {
		return 0
	}
	return typeTraits[t].typeSize
}

// Quantized reports whether t stores blocks of more than one element.
func (t TensorType) Quantized() bool { return t.BlockSize() > 1 }

// ParseTensorType maps a lower-case name such as "q8_0" or "q4_k" to its type.
func ParseTensorType(name string) (TensorType, error) {
	for i, tr := range typeTraits {
		if tr.blockSize > 0 && equalFold(tr.name, name) {
			return TensorType(i), nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q", name)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// RowBytes is the encoded size of ne0 elements of t; ne0 must be a multiple
// of the block size.
func (t TensorType) RowBytes(ne0 int64) int64 {
	bs := int64(t.BlockSize())
	if bs == 0 {
		return 0
	}
	return ne0 / bs * int64(t.TypeSize())
}

// FileType is llama.cpp's llama_ftype, stored as general.file_type: which type
// most 2-D weights of a model have.
type FileType uint32

// File types that ragtune writes (llama.h numbering).
const (
	FileTypeAllF32 FileType = 0
	FileTypeF16    FileType = 1
	FileTypeQ4_0   FileType = 2
	FileTypeQ4_1   FileType = 3
	FileTypeQ8_0   FileType = 7
	FileTypeQ5_0   FileType = 8
	FileTypeQ5_1   FileType = 9
	FileTypeQ4_K_S FileType = 14
	FileTypeQ4_K_M FileType = 15
	FileTypeQ6_K   FileType = 18
	FileTypeBF16   FileType = 32
)

var fileTypeNames = map[FileType]string{
	FileTypeAllF32: "all F32", FileTypeF16: "mostly F16", FileTypeQ4_0: "mostly Q4_0",
	FileTypeQ4_1: "mostly Q4_1", FileTypeQ8_0: "mostly Q8_0", FileTypeQ5_0: "mostly Q5_0",
	FileTypeQ5_1: "mostly Q5_1", 10: "mostly Q2_K", 11: "mostly Q3_K_S", 12: "mostly Q3_K_M",
	13: "mostly Q3_K_L", FileTypeQ4_K_S: "mostly Q4_K_S", FileTypeQ4_K_M: "mostly Q4_K_M",
	16: "mostly Q5_K_S", 17: "mostly Q5_K_M", FileTypeQ6_K: "mostly Q6_K", FileTypeBF16: "mostly BF16",
}

func (t FileType) String() string {
	if s, ok := fileTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("llama_ftype(%d)", uint32(t))
}
