package index

import (
	"strings"
	"testing"
)

func TestParseVectors(t *testing.T) {
	in := `{"_id":"d1","i":0,"n_tokens":3,"embedding":[1,2,3]}

{"_id":7,"i":1,"n_tokens":2,"embedding":[0.5,-1,2e-3]}
{"i":2,"n_tokens":1,"embedding":[0,0,1]}`
	vs, err := ParseVectors("emb.jsonl", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].ID != "d1" || vs[1].ID != "7" || vs[2].ID != "" || vs[2].I != 2 || vs[1].Embedding[2] != 2e-3 {
		t.Fatalf("parsed %+v", vs)
	}
}

func TestParseVectorsErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"i":0,"embedding":[1,2]}` + "\n" + `{"i":1,"embedding":[1]}`, `emb.jsonl:2: field "embedding": 1 dimensions, line 1 has 2`},
		{`{"i":0,"embedding":[1]`, `emb.jsonl:1: bad JSON`},
		{`{"embedding":[1]}`, `emb.jsonl:1: field "i": missing`},
		{`{"i":0,"embedding":[]}`, `field "embedding": missing or empty`},
		{`{"i":0,"embedding":[1e39]}`, `overflows float32`},
		{`{"i":0,"embedding":["x"]}`, `bad JSON`},
		{`{"_id":"a","i":0,"embedding":[1]}` + "\n" + `{"_id":"a","i":1,"embedding":[1]}`, `emb.jsonl:2: field "_id": duplicate id "a" (first on line 1)`},
		{`{"i":0,"embedding":[1]}` + "\n" + `{"i":0,"embedding":[1]}`, `field "i": duplicate index 0`},
		{`{"_id":true,"i":0,"embedding":[1]}`, `field "_id": id must be a string or a number`},
		{"{\"_id\":\"\xff\",\"i\":0,\"embedding\":[1]}", `invalid UTF-8`},
		{`{"i":-1,"embedding":[1]}`, `negative index`},
	} {
		_, err := ParseVectors("emb.jsonl", strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.in, err, c.want)
		}
	}
}

func FuzzParseVectors(f *testing.F) {
	f.Add(`{"_id":"d1","i":0,"n_tokens":3,"embedding":[1,2,3]}` + "\n" + `{"i":1,"embedding":[4,5,6]}`)
	f.Add(`{"i":0,"embedding":[1e38,-1e-45]}`)
	f.Add("\n\n{}")
	f.Fuzz(func(t *testing.T, in string) {
		vs, err := ParseVectors("fuzz", strings.NewReader(in))
		if err != nil {
			return
		}
		for _, v := range vs {
			if len(v.Embedding) != len(vs[0].Embedding) || len(v.Embedding) == 0 {
				t.Fatalf("accepted ragged or empty vectors: %+v", vs)
			}
		}
	})
}
