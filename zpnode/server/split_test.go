package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// TestSplitStagedAfterRollback: a child whose staging ends after the node
// applied the topology ending its split goes when the split was rolled
// back (the sweep of that topology ran while the child was being staged:
// a leftover no later topology would sweep), and stays when the split is
// still in PREPARE or committed. Seen in CI: TestSplitRollsBack/cancel
// found a slave's child left on disk.
func TestSplitStagedAfterRollback(t *testing.T) {
	const other = "127.0.0.1:7002"
	fence := &zppb.SplitRecord{Child: 1, At: 8192, End: 16384, Epoch: 2}
	// preparing is the topology of the split's PREPARE at epoch: the node
	// a slave of partition 0, whose master is elsewhere (so that it logs
	// no fence of its own).
	preparing := func(epoch uint64) *zppb.Topology {
		tp := singleMaster(1, other, "127.0.0.1:7001")
		tp.Epoch = epoch
		p := tp.Tables[0].Partitions[0]
		p.SlotBegin, p.SlotEnd = 0, 16384
		p.Split = &zppb.PartitionSplit{Child: 1, At: 8192, Epoch: 2, Move: 1}
		return tp
	}
	tests := []struct {
		name string
		// after is the topology the node applies while the child is
		// being staged.
		after func() *zppb.Topology
		kept  bool
	}{
		{name: "rolled back", after: func() *zppb.Topology {
			tp := preparing(3)
			tp.Tables[0].Partitions[0].Split = nil
			return tp
		}},
		{name: "still preparing", after: func() *zppb.Topology { return preparing(3) }, kept: true},
		{name: "committed", after: func() *zppb.Topology {
			tp := preparing(3)
			tb := tp.Tables[0]
			tb.Partitions[0].Split, tb.Partitions[0].SlotEnd = nil, 8192
			// The child's replicas are elsewhere: this node does not open
			// it, and only the callback could remove its directory.
			tb.Partitions = append(tb.Partitions, &zppb.Partition{Id: 1, Master: other, Term: 1, SlotBegin: 8192, SlotEnd: 16384, SplitEpoch: 2})
			tb.PartitionCount = 2
			return tp
		}, kept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, "127.0.0.1:7001")
			s := ts.s
			s.applyTopology(preparing(2))
			dir := s.splitDir("t", 0)(fence)
			if dir == "" {
				t.Fatal("no directory for the child of a split in PREPARE")
			}
			// The staging has begun (the checkpoint is being written) when
			// the next topology comes, and ends after it.
			if err := os.MkdirAll(filepath.Join(dir, "sync.tmp"), 0o755); err != nil {
				t.Fatal(err)
			}
			s.applyTopology(tt.after())
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "split.from"), []byte("parent=0 epoch=2 term=1 lsn=1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s.splitStaged("t", 0)(fence)
			_, err := os.Stat(dir)
			if kept := err == nil; kept != tt.kept {
				t.Fatalf("child's directory kept: %v, want %v (stat: %v)", kept, tt.kept, err)
			}
		})
	}
}

// TestFullSyncOfParentBeforeItsTrim: a node that holds a split's parent
// and staged its child serves no full sync of the parent once the split
// committed until the halves are trimmed (the copy would hold the child's
// keys, and nothing would trim them at the slave: the window between the
// commit and the parent's trim being recorded); otherwise the copy
// claims the partition's range, for a slave that owns less to trim.
func TestFullSyncOfParentBeforeItsTrim(t *testing.T) {
	const other = "127.0.0.1:7002"
	ts := newMaster(t)
	s := ts.s
	src, err := dbsync.NewSource(dbsync.SourceOptions{Dir: t.TempDir(), Logger: s.cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	s.fullsync = src
	start := func() *zppb.Response {
		resp := ts.do(&zppb.Request{Cmd: &zppb.Request_FullsyncStart{FullsyncStart: &zppb.FullSyncStartRequest{Table: "t", Partition: 0, Slave: other}}})
		if st := resp.GetFullsyncStart(); st != nil {
			ts.ok(&zppb.Request{Cmd: &zppb.Request_FullsyncEnd{FullsyncEnd: &zppb.FullSyncEndRequest{Table: "t", Partition: 0, Session: st.Session}}})
		}
		return resp
	}
	if st := start().GetFullsyncStart(); st == nil || st.SlotBegin != 0 || st.SlotEnd != 16384 {
		t.Fatalf("full sync of a partition never split: %v, want a copy claiming [0, 16384)", st)
	}

	// Committed: the child is a partition (mastered elsewhere: the node
	// does not open it), its marker still names the parent.
	tp := singleMaster(5, s.cfg.Addr)
	tb := tp.Tables[0]
	tb.Partitions[0].SlotBegin, tb.Partitions[0].SlotEnd = 0, 8192
	tb.Partitions = append(tb.Partitions, &zppb.Partition{Id: 1, Master: other, Term: 1, SlotBegin: 8192, SlotEnd: 16384, SplitEpoch: 4})
	tb.PartitionCount = 2
	child := s.replicaDir("t", 1)
	if err := os.MkdirAll(child, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(child, "split.from"), []byte("parent=0 epoch=4 term=1 lsn=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.applyTopology(tp)
	if resp := start(); resp.Code != zppb.Code_WAIT {
		t.Fatalf("full sync of the parent before its trim: %v %s, want WAIT", resp.Code, resp.Msg)
	}
	if err := os.Remove(filepath.Join(child, "split.from")); err != nil { // the halves trimmed
		t.Fatal(err)
	}
	if st := start().GetFullsyncStart(); st == nil || st.SlotBegin != 0 || st.SlotEnd != 8192 {
		t.Fatalf("full sync of the trimmed parent: %v, want a copy claiming [0, 8192)", st)
	}
}

// TestWriteRoutedBeforeSplitCommit: a write routed to the parent by the
// topology before a split, and logged only after the split committed
// (its fence long logged), is refused rather than stored in the range the
// parent gave its child, where the parent's trim would delete it once
// acknowledged. Seen in TestSplitSurvivesKills: an acknowledged write
// lost, found in the parent's binlog after the fence. The request itself
// is sent on by the topology the node runs (MOVE to the child's master).
func TestWriteRoutedBeforeSplitCommit(t *testing.T) {
	const other = "127.0.0.1:7002"
	ts := newMaster(t)
	s := ts.s
	var key string
	for i := 0; key == ""; i++ {
		if k := fmt.Sprintf("k%d", i); keyspace.Slot([]byte(k)) >= 8192 {
			key = k
		}
	}
	r, err := s.route("t", []byte(key))
	if err != nil {
		t.Fatal(err)
	}

	prepare := singleMaster(1, s.cfg.Addr)
	prepare.Epoch = 2
	p := prepare.Tables[0].Partitions[0]
	p.SlotBegin, p.SlotEnd = 0, 16384
	p.Split = &zppb.PartitionSplit{Child: 1, At: 8192, Epoch: 2, Move: 1}
	s.applyTopology(prepare)
	// The meta leader commits once the master has logged the fence and
	// staged the child.
	for deadline := time.Now().Add(10 * time.Second); s.splitChild("t", 0, p) == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the master did not log the fence and stage the child in 10s")
		}
	}

	commit := singleMaster(1, s.cfg.Addr)
	commit.Epoch = 3
	tb := commit.Tables[0]
	tb.Partitions[0].SlotBegin, tb.Partitions[0].SlotEnd = 0, 8192
	tb.Partitions = append(tb.Partitions, &zppb.Partition{Id: 1, Master: other, Term: 1, SlotBegin: 8192, SlotEnd: 16384, SplitEpoch: 2})
	tb.PartitionCount = 2
	s.applyTopology(commit)

	_, before, _ := r.Position()
	ctx := context.Background()
	rec := &zppb.WriteRecord{Mutations: []*zppb.Mutation{{Kind: zppb.Mutation_PUT, Key: []byte(key), Value: []byte("v")}}}
	if err := r.Write(ctx, nil, rec); !errors.Is(err, replica.ErrSplitting) {
		t.Fatalf("write to the child's slot %d routed before the commit: %v, want ErrSplitting", keyspace.Slot([]byte(key)), err)
	}
	if _, after, _ := r.Position(); after != before {
		t.Fatalf("the refused write was logged (lsn %d -> %d)", before, after)
	}
	if resp := ts.do(setReq(key, "v")); resp.Code != zppb.Code_MOVE || resp.Master != other {
		t.Fatalf("SET %s after the commit: %v %q (master %q), want MOVE to %s", key, resp.Code, resp.Msg, resp.Master, other)
	}
	ts.ok(setReq("k-low", "v")) // the range the parent kept
}
