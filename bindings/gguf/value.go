package gguf

import (
	"fmt"
	"strings"
)

// Value is one metadata value: a scalar or an array of scalars (ggml refuses
// arrays of arrays). The Go type held matches Type exactly: uint8, int8,
// uint16, int16, uint32, int32, float32, bool, string, uint64, int64, float64,
// or for arrays a slice of one of them.
type Value struct {
	Type     ValueType // scalar type, or TypeArray
	ElemType ValueType // element type when Type is TypeArray
	v        any
}

// Scalar is the set of Go types a metadata scalar can have.
type Scalar interface {
	uint8 | int8 | uint16 | int16 | uint32 | int32 | float32 | bool | string | uint64 | int64 | float64
}

func typeOf(v any) ValueType {
	switch v.(type) {
	case uint8:
		return TypeUint8
	case int8:
		return TypeInt8
	case uint16:
		return TypeUint16
	case int16:
		return TypeInt16
	case uint32:
		return TypeUint32
	case int32:
		return TypeInt32
	case float32:
		return TypeFloat32
	case bool:
		return TypeBool
	case string:
		return TypeString
	case uint64:
		return TypeUint64
	case int64:
		return TypeInt64
	case float64:
		return TypeFloat64
	}
	panic(fmt.Sprintf("gguf: %T is not a metadata scalar", v))
}

// Of makes a scalar value whose GGUF type follows the Go type of v:
// Of(uint32(3)) is a UINT32, Of(float32(1e-5)) a FLOAT32.
func Of[T Scalar](v T) Value { return Value{Type: typeOf(any(v)), v: v} }

// ArrayOf makes an array value of element type T. The slice is not copied.
func ArrayOf[T Scalar](vs []T) Value {
	var zero T
	if vs == nil {
		vs = []T{}
	}
	return Value{Type: TypeArray, ElemType: typeOf(any(zero)), v: vs}
}

// valid reports whether v was made by Of, ArrayOf or the reader.
func (v Value) valid() bool {
	switch v.v.(type) {
	case nil:
		return false
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64:
		return v.Type == TypeArray && v.ElemType != TypeArray
	}
	return v.Type != TypeArray && typeOf(v.v) == v.Type
}

// Any returns the Go value (a scalar or a slice).
func (v Value) Any() any { return v.v }

// Len is the element count of an array, 1 for a scalar.
func (v Value) Len() int {
	switch a := v.v.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []float32:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float64:
		return len(a)
	}
	return 1
}

// TypeName describes the type as "u32" or "array[string]".
func (v Value) TypeName() string {
	if v.Type == TypeArray {
		return "array[" + v.ElemType.String() + "]"
	}
	return v.Type.String()
}

// String renders the value briefly (long arrays are elided) for humans.
func (v Value) String() string {
	if v.Type != TypeArray {
		if s, ok := v.v.(string); ok {
			return fmt.Sprintf("%q", s)
		}
		return fmt.Sprint(v.v)
	}
	n := v.Len()
	const show = 6
	var parts []string
	for i := 0; i < n && i < show; i++ {
		parts = append(parts, elemString(v.v, i))
	}
	s := "[" + strings.Join(parts, ", ")
	if n > show {
		s += fmt.Sprintf(", ... (%d items)", n)
	}
	return s + "]"
}

func elemString(a any, i int) string {
	switch a := a.(type) {
	case []string:
		return fmt.Sprintf("%q", a[i])
	case []uint8:
		return fmt.Sprint(a[i])
	case []int8:
		return fmt.Sprint(a[i])
	case []uint16:
		return fmt.Sprint(a[i])
	case []int16:
		return fmt.Sprint(a[i])
	case []uint32:
		return fmt.Sprint(a[i])
	case []int32:
		return fmt.Sprint(a[i])
	case []float32:
		return fmt.Sprint(a[i])
	case []bool:
		return fmt.Sprint(a[i])
	case []uint64:
		return fmt.Sprint(a[i])
	case []int64:
		return fmt.Sprint(a[i])
	case []float64:
		return fmt.Sprint(a[i])
	}
	return "?"
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}
