package hfconvert

import (
	"encoding/binary"
	"fmt"
	"math"
)

// spmModel is what the converter needs from a SentencePiece tokenizer.model
// (sentencepiece_model.proto's ModelProto): the pieces with score and type,
// the model type and the normalizer's settings.
type spmModel struct {
	Pieces       []spmPiece
	ModelType    int // trainer_spec.model_type: 1 unigram, 2 bpe, 3 word, 4 char
	AddDummy     bool
	RemoveSpaces bool
	Charsmap     []byte
}

type spmPiece struct {
	Text  string
	Score float32
	Type  int32 // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte (= llama.cpp's token types)
}

// SentencePiece model types.
const (
	spmUnigram = 1
	spmBPE     = 2
)

// protoReader walks one protobuf message; every length is checked against
// the bytes left.
type protoReader struct {
	b    []byte
	what string
}

func (r *protoReader) varint() (uint64, error) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, fmt.Errorf("%s: bad varint", r.what)
	}
	r.b = r.b[n:]
	return v, nil
}

// next returns the next field's number and wire type, and its payload for
// length-delimited (2) and fixed (1, 5) fields, or its value for varints (0).
func (r *protoReader) next() (field int, wire int, payload []byte, value uint64, err error) {
	key, err := r.varint()
	if err != nil {
		return 0, 0, nil, 0, err
	}
	field, wire = int(key>>3), int(key&7)
	switch wire {
	case 0:
		value, err = r.varint()
	case 1, 5:
		n := 8
		if wire == 5 {
			n = 4
		}
		if len(r.b) < n {
			return 0, 0, nil, 0, fmt.Errorf("%s: field %d truncated", r.what, field)
		}
		payload, r.b = r.b[:n], r.b[n:]
	case 2:
		var n uint64
		if n, err = r.varint(); err != nil {
			return
		}
		if n > uint64(len(r.b)) {
			return 0, 0, nil, 0, fmt.Errorf("%s: field %d claims %d bytes, %d left", r.what, field, n, len(r.b))
		}
		payload, r.b = r.b[:n], r.b[n:]
	default:
		return 0, 0, nil, 0, fmt.Errorf("%s: field %d has unsupported wire type %d", r.what, field, wire)
	}
	return
}

// parseSPM reads a serialized ModelProto.
func parseSPM(data []byte, path string) (*spmModel, error) {
	m := &spmModel{ModelType: spmUnigram, AddDummy: true, RemoveSpaces: true}
	r := &protoReader{b: data, what: path}
	for len(r.b) > 0 {
		field, wire, payload, _, err := r.next()
		if err != nil {
			return nil, err
		}
		switch {
		case field == 1 && wire == 2:
			p, err := parsePiece(payload, path)
			if err != nil {
				return nil, fmt.Errorf("%w (piece %d)", err, len(m.Pieces))
			}
			m.Pieces = append(m.Pieces, p)
		case field == 2 && wire == 2:
			if err := m.parseTrainer(payload, path); err != nil {
				return nil, err
			}
		case field == 3 && wire == 2:
			if err := m.parseNormalizer(payload, path); err != nil {
				return nil, err
			}
		}
	}
	if len(m.Pieces) == 0 {
		return nil, fmt.Errorf("%s: no pieces: not a SentencePiece model", path)
	}
	return m, nil
}

func parsePiece(b []byte, path string) (spmPiece, error) {
	p := spmPiece{Type: 1}
	r := &protoReader{b: b, what: path}
	for len(r.b) > 0 {
		field, wire, payload, value, err := r.next()
		if err != nil {
			return p, err
		}
		switch {
		case field == 1 && wire == 2:
			p.Text = string(payload)
		case field == 2 && wire == 5:
			p.Score = math.Float32frombits(binary.LittleEndian.Uint32(payload))
		case field == 3 && wire == 0:
			if value < 1 || value > 6 {
				return p, fmt.Errorf("%s: piece %q has type %d, expected 1..6", path, p.Text, value)
			}
			p.Type = int32(value)
		}
	}
	return p, nil
}

func (m *spmModel) parseTrainer(b []byte, path string) error {
	r := &protoReader{b: b, what: path}
	for len(r.b) > 0 {
		field, wire, _, value, err := r.next()
		if err != nil {
			return err
		}
		if field == 3 && wire == 0 {
			m.ModelType = int(value)
		}
	}
	return nil
}

func (m *spmModel) parseNormalizer(b []byte, path string) error {
	r := &protoReader{b: b, what: path}
	for len(r.b) > 0 {
		field, wire, payload, value, err := r.next()
		if err != nil {
			return err
		}
		switch {
		case field == 2 && wire == 2:
			m.Charsmap = append([]byte(nil), payload...)
		case field == 3 && wire == 0:
			m.AddDummy = value != 0
		case field == 4 && wire == 0:
			m.RemoveSpaces = value != 0
		}
	}
	return nil
}

// protoWriter builds a ModelProto (the export writes tokenizer.model back).
type protoWriter struct{ b []byte }

func (w *protoWriter) key(field, wire int) { w.b = binary.AppendUvarint(w.b, uint64(field<<3|wire)) }
func (w *protoWriter) bytes(field int, p []byte) {
	w.key(field, 2)
	w.b = binary.AppendUvarint(w.b, uint64(len(p)))
	w.b = append(w.b, p...)
}
func (w *protoWriter) varint(field int, v uint64) {
	w.key(field, 0)
	w.b = binary.AppendUvarint(w.b, v)
}
func (w *protoWriter) float(field int, f float32) {
	w.key(field, 5)
	w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(f))
}

// encodeSPM serializes m.
func encodeSPM(m *spmModel) []byte {
	var out protoWriter
	for _, p := range m.Pieces {
		var pw protoWriter
		pw.bytes(1, []byte(p.Text))
		pw.float(2, p.Score)
		pw.varint(3, uint64(p.Type))
		out.bytes(1, pw.b)
	}
	var tw protoWriter
	tw.varint(3, uint64(m.ModelType))
	out.bytes(2, tw.b)
	var nw protoWriter
	if len(m.Charsmap) > 0 {
		nw.bytes(2, m.Charsmap)
	}
	nw.varint(3, boolInt(m.AddDummy))
	nw.varint(4, boolInt(m.RemoveSpaces))
	out.bytes(3, nw.b)
	return out.b
}

func boolInt(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
