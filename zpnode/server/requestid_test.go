package server

import (
	"bytes"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestPartID(t *testing.T) {
	rec := func(keys ...string) *zppb.WriteRecord {
		r := &zppb.WriteRecord{}
		for _, k := range keys {
			r.Mutations = append(r.Mutations, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: []byte(k), Value: []byte("v")})
		}
		return r
	}
	id := []byte("0123456789abcdef")
	base := partID(id, rec("a", "b"))
	if len(base) != 16 {
		t.Fatalf("partID is %d bytes, want 16", len(base))
	}
	tests := []struct {
		name string
		id   []byte
		rec  *zppb.WriteRecord
		same bool
	}{
		{"same keys again", id, rec("a", "b"), true},
		{"other share of the call", id, rec("c"), false},
		{"fewer keys", id, rec("a"), false},
		{"key boundaries differ", id, rec("ab"), false},
		{"other call", []byte("fedcba9876543210"), rec("a", "b"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bytes.Equal(partID(tt.id, tt.rec), base); got != tt.same {
				t.Errorf("equal to the first share's id = %v, want %v", got, tt.same)
			}
		})
	}
	if got := partID(nil, rec("a")); got != nil {
		t.Errorf("partID without a request id = %x, want nil (no dedup)", got)
	}
}
