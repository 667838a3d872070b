package topodelta

import (
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestMergeNodes: changed nodes replace or join the current list, sorted
// by address, whether the lists come sorted (as meta sends them: merged in
// one pass) or not.
func TestMergeNodes(t *testing.T) {
	node := func(addr string, zone string) *zppb.Node { return &zppb.Node{Addr: addr, Zone: zone} }
	cur := []*zppb.Node{node("b", "old"), node("d", "old"), node("f", "old")}
	tests := []struct {
		name    string
		cur     []*zppb.Node
		changed []*zppb.Node
		want    []string // addr/zone
	}{
		{"one changed", cur, []*zppb.Node{node("d", "new")}, []string{"b/old", "d/new", "f/old"}},
		{"new first and last", cur, []*zppb.Node{node("a", "new"), node("g", "new")}, []string{"a/new", "b/old", "d/old", "f/old", "g/new"}},
		{"new between and changed", cur, []*zppb.Node{node("c", "new"), node("f", "new")}, []string{"b/old", "c/new", "d/old", "f/new"}},
		{"into none", nil, []*zppb.Node{node("a", "new")}, []string{"a/new"}},
		{"unsorted", []*zppb.Node{node("f", "old"), node("b", "old")}, []*zppb.Node{node("d", "new"), node("b", "new")}, []string{"b/new", "d/new", "f/old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, n := range mergeNodes(tt.cur, tt.changed, false) {
				got = append(got, n.Addr+"/"+n.Zone)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
