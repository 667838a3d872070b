package clienttest_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The fake meta servers run moves one step per MOVE_STATUS, changing the
// topology as the real state machine does.
func TestMoves(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 3)
	cl.AddTable("t", 3) // 0: n0 master, n1 slave; 1: n1, n2; 2: n2, n0
	n0, n1, n2 := cl.Nodes[0].Addr, cl.Nodes[1].Addr, cl.Nodes[2].Addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Options{MetaAddrs: cl.MetaAddrs(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	part := func(id uint32) *zppb.Partition { return cl.Topology().Tables[0].Partitions[id] }

	if _, err := c.Migrate(ctx, "t", 0, n0, n2, cl.Epoch()-1); status.Code(err) != zppb.Code_STALE_EPOCH {
		t.Fatalf("stale: %v", err)
	}
	if _, err := c.Migrate(ctx, "t", 0, n0, n1, 0); status.Code(err) != zppb.Code_INVALID_ARGUMENT {
		t.Fatalf("onto a holder: %v", err)
	}
	moves, err := c.Migrate(ctx, "t", 0, n0, n2, cl.Epoch())
	if err != nil || len(moves) != 1 || moves[0].Id != 1 || moves[0].State != zppb.MoveState_MOVE_PENDING {
		t.Fatalf("migrate: %v %v", moves, err)
	}
	if _, err := c.SetMaster(ctx, "t", 0, n1, 0); status.Code(err) != zppb.Code_INVALID_ARGUMENT {
		t.Fatalf("second move on a busy partition: %v", err)
	}
	var states []zppb.MoveState
	for range 7 {
		ms, err := c.MoveStatus(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, ms[0].State)
	}
	want := []zppb.MoveState{zppb.MoveState_MOVE_CATCHING_UP, zppb.MoveState_MOVE_CATCHING_UP, zppb.MoveState_MOVE_SLOWDOWN,
		zppb.MoveState_MOVE_STUCK, zppb.MoveState_MOVE_REMOVING, zppb.MoveState_MOVE_DONE, zppb.MoveState_MOVE_DONE}
	if !slices.Equal(states, want) {
		t.Fatalf("states %v, want %v", states, want)
	}
	if p := part(0); p.Master != n2 || !slices.Equal(p.Slaves, []string{n1}) || p.Term != 2 || p.State != zppb.PartitionState_ACTIVE {
		t.Fatalf("after the migration: %v", p)
	}
	if ms, _ := c.MoveStatus(ctx, false); len(ms) != 0 {
		t.Fatalf("active moves %v", ms)
	}

	// A failing move is rolled back; a cancelled one too.
	cl.SetMoveScript(clienttest.FailingMoveScript(2, "boom"))
	if _, err := c.AddSlave(ctx, "t", 1, n0, 0); err != nil {
		t.Fatal(err)
	}
	c.MoveStatus(ctx, false)
	if p := part(1); !slices.Contains(p.Slaves, n0) {
		t.Fatalf("target not added: %v", p)
	}
	ms, _ := c.MoveStatus(ctx, true)
	if m := ms[1]; m.State != zppb.MoveState_MOVE_FAILED || m.Error != "boom" || slices.Contains(part(1).Slaves, n0) {
		t.Fatalf("failed move %v, partition %v", m, part(1))
	}
	cl.SetMoveScript(nil)
	if _, err := c.RemoveSlave(ctx, "t", 2, n0, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := c.CancelMove(ctx, 0); err != nil || len(got) != 1 || got[0].State != zppb.MoveState_MOVE_CANCELLED {
		t.Fatalf("cancel: %v %v", got, err)
	}
	if _, err := c.CancelMove(ctx, 3); status.Code(err) != zppb.Code_INVALID_ARGUMENT {
		t.Fatalf("cancel again: %v", err)
	}

	// REBALANCE: a dry run queues nothing.
	plan, err := c.Rebalance(ctx, zppb.RebalanceRequest_SHRINK, []string{n0}, true, 0)
	if err != nil || len(plan) != 1 || plan[0].Id != 0 || plan[0].Origin != "shrink" || len(cl.Moves()) != 3 {
		t.Fatalf("dry run: %v %v", plan, err)
	}
	if _, err := c.RemoveNodes(ctx, []string{n0}, 0); status.Code(err) != zppb.Code_INVALID_ARGUMENT {
		t.Fatalf("remove an UP node: %v", err)
	}
}
