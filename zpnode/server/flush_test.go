package server

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestCheckFlushPartitions(t *testing.T) {
	tests := []struct {
		name string
		ids  []uint32
		want zppb.Code
	}{
		{"all", []uint32{0, 1, 2, 3}, zppb.Code_OK},
		{"some, any order", []uint32{3, 1}, zppb.Code_OK},
		{"none", nil, zppb.Code_INVALID_ARGUMENT},
		{"out of range", []uint32{0, 4}, zppb.Code_INVALID_ARGUMENT},
		{"twice", []uint32{2, 0, 2}, zppb.Code_INVALID_ARGUMENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(checkFlushPartitions(tt.ids, 4)); got != tt.want {
				t.Fatalf("checkFlushPartitions(%v, 4) = %v, want %v", tt.ids, got, tt.want)
			}
		})
	}
}
