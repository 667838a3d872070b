package topodelta

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func tbl(name string, created uint64, master string) *zppb.Table {
	return &zppb.Table{Name: name, CreatedEpoch: created, PartitionCount: 1, Replicas: 1,
		Partitions: []*zppb.Partition{{Master: master}}}
}

// tbl2 is a table of two partitions of one replica.
func tbl2(name string, created uint64, master0, master1 string) *zppb.Table {
	return &zppb.Table{Name: name, CreatedEpoch: created, PartitionCount: 2, Replicas: 1,
		Partitions: []*zppb.Partition{{Id: 0, Master: master0}, {Id: 1, Master: master1}}}
}

func stamp(name string, created, changed uint64) *zppb.TableStamp {
	return &zppb.TableStamp{Name: name, CreatedEpoch: created, ChangedEpoch: changed}
}

func TestApply(t *testing.T) {
	nodes := []*zppb.Node{{Addr: "a:1"}, {Addr: "b:1"}}
	cur := &zppb.Topology{Epoch: 10, Nodes: nodes, Tables: []*zppb.Table{tbl("a", 2, "a:1"), tbl2("b", 3, "a:1", "a:1"), tbl("c", 4, "a:1")}}
	tests := []struct {
		name    string
		resp    *zppb.PullResponse
		want    *zppb.Topology
		wantErr bool
	}{
		{
			// An old meta ignores since_epoch and answers the whole
			// topology without the flag: it replaces the view.
			name: "whole topology (old meta)",
			resp: &zppb.PullResponse{Topology: &zppb.Topology{Epoch: 12, Tables: []*zppb.Table{tbl("a", 2, "b:1")}}},
			want: &zppb.Topology{Epoch: 12, Tables: []*zppb.Table{tbl("a", 2, "b:1")}},
		},
		{
			name: "one table changed, one dropped, one created, nodes kept",
			resp: &zppb.PullResponse{Delta: true,
				Topology: &zppb.Topology{Epoch: 13, Tables: []*zppb.Table{tbl("b", 3, "b:1"), tbl("d", 13, "b:1")}},
				Tables:   []*zppb.TableStamp{stamp("a", 2, 2), stamp("b", 3, 11), stamp("d", 13, 13)}},
			want: &zppb.Topology{Epoch: 13, Nodes: nodes, Tables: []*zppb.Table{tbl("a", 2, "a:1"), tbl("b", 3, "b:1"), tbl("d", 13, "b:1")}},
		},
		{
			name: "nodes changed",
			resp: &zppb.PullResponse{Delta: true, NodesChanged: true,
				Topology: &zppb.Topology{Epoch: 11, Nodes: nodes[:1]},
				Tables:   []*zppb.TableStamp{stamp("a", 2, 2), stamp("b", 3, 3), stamp("c", 4, 4)}},
			want: &zppb.Topology{Epoch: 11, Nodes: nodes[:1], Tables: cur.Tables},
		},
		{
			name: "a node changed, one added",
			resp: &zppb.PullResponse{Delta: true,
				Topology: &zppb.Topology{Epoch: 12, Nodes: []*zppb.Node{{Addr: "0:1"}, {Addr: "b:1", State: zppb.NodeState_DOWN}}},
				Tables:   []*zppb.TableStamp{stamp("a", 2, 2), stamp("b", 3, 3), stamp("c", 4, 4)}},
			want: &zppb.Topology{Epoch: 12, Nodes: []*zppb.Node{{Addr: "0:1"}, {Addr: "a:1"}, {Addr: "b:1", State: zppb.NodeState_DOWN}}, Tables: cur.Tables},
		},
		{
			name: "empty delta",
			resp: &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 10},
				Tables: []*zppb.TableStamp{stamp("a", 2, 2), stamp("b", 3, 3), stamp("c", 4, 4)}},
			want: cur,
		},
		{
			name: "a table left out that the view lacks",
			resp: &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 12},
				Tables: []*zppb.TableStamp{stamp("e", 5, 5)}},
			wantErr: true,
		},
		{
			name: "a table left out that was created anew",
			resp: &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 12},
				Tables: []*zppb.TableStamp{stamp("a", 9, 9)}},
			wantErr: true,
		},
		{
			name:    "a delta older than the view",
			resp:    &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 9}},
			wantErr: true,
		},
		{
			// PULL with partition_deltas: table b's partition 1 changed.
			name: "a partial table",
			resp: &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 12},
				PartialTables: []*zppb.Table{{Name: "b", CreatedEpoch: 3, PartitionCount: 2, Replicas: 1, Partitions: []*zppb.Partition{{Id: 1, Master: "b:1"}}}},
				Tables:        []*zppb.TableStamp{stamp("a", 2, 2), stamp("b", 3, 12), stamp("c", 4, 4)}},
			want: &zppb.Topology{Epoch: 12, Nodes: nodes, Tables: []*zppb.Table{tbl("a", 2, "a:1"), tbl2("b", 3, "a:1", "b:1"), tbl("c", 4, "a:1")}},
		},
		{
			name: "a partial table of a table created anew",
			resp: &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 12},
				PartialTables: []*zppb.Table{{Name: "b", CreatedEpoch: 11, PartitionCount: 2, Replicas: 1, Partitions: []*zppb.Partition{{Id: 1, Master: "b:1"}}}},
				Tables:        []*zppb.TableStamp{stamp("a", 2, 2), stamp("b", 3, 12), stamp("c", 4, 4)}},
			wantErr: true,
		},
		{
			name: "a partial table with a partition out of range",
			resp: &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 12},
				PartialTables: []*zppb.Table{{Name: "b", CreatedEpoch: 3, PartitionCount: 2, Replicas: 1, Partitions: []*zppb.Partition{{Id: 2, Master: "b:1"}}}},
				Tables:        []*zppb.TableStamp{stamp("a", 2, 2), stamp("b", 3, 12), stamp("c", 4, 4)}},
			wantErr: true,
		},
		{name: "no topology", resp: &zppb.PullResponse{}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply(cur, tt.resp)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Apply: %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !proto.Equal(got, tt.want) {
				t.Fatalf("Apply =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
	if _, err := Apply(nil, &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 1}}); err == nil {
		t.Error("a delta applied to no topology")
	}
}

// TestPull: a delta that fits is applied after one call; one that does not
// is reported and the whole topology asked for; without a topology held the
// first call asks for the whole one.
func TestPull(t *testing.T) {
	cur := &zppb.Topology{Epoch: 10, Tables: []*zppb.Table{tbl("a", 2, "a:1")}}
	whole := &zppb.Topology{Epoch: 12, Tables: []*zppb.Table{tbl("a", 2, "b:1"), tbl("x", 11, "b:1")}}
	fits := &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 12, Tables: []*zppb.Table{tbl("a", 2, "b:1")}},
		Tables: []*zppb.TableStamp{stamp("a", 2, 12)}}
	// Names table x as unchanged, which cur does not hold.
	misfits := &zppb.PullResponse{Delta: true, Topology: &zppb.Topology{Epoch: 12},
		Tables: []*zppb.TableStamp{stamp("a", 2, 2), stamp("x", 11, 11)}}
	tests := []struct {
		name      string
		cur       *zppb.Topology
		delta     *zppb.PullResponse // the answer to since_epoch != 0
		wantSince []uint64
		want      *zppb.Topology
		misfit    bool
	}{
		{"delta fits", cur, fits, []uint64{10}, &zppb.Topology{Epoch: 12, Tables: []*zppb.Table{tbl("a", 2, "b:1")}}, false},
		{"delta does not fit", cur, misfits, []uint64{10, 0}, whole, true},
		{"nothing held", nil, nil, []uint64{0}, whole, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var since []uint64
			misfit := false
			got, err := Pull(context.Background(), tt.cur, func(_ context.Context, req *zppb.PullRequest) (*zppb.PullResponse, error) {
				since = append(since, req.GetSinceEpoch())
				if req.GetSinceEpoch() != 0 && !req.GetPartitionDeltas() {
					t.Error("a delta asked without partition_deltas")
				}
				if req.GetSinceEpoch() == 0 {
					return &zppb.PullResponse{Topology: whole}, nil
				}
				return tt.delta, nil
			}, func(error) { misfit = true })
			if err != nil || !proto.Equal(got, tt.want) || !slices.Equal(since, tt.wantSince) || misfit != tt.misfit {
				t.Fatalf("Pull = %v, %v after calls since %v, misfit %v; want %v after %v, misfit %v", got, err, since, misfit, tt.want, tt.wantSince, tt.misfit)
			}
		})
	}
}
