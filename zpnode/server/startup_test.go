package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// TestStartupProgress: a node restarting with a table's replicas shows in
// LIST_NODES how far it is in opening them (one replica's open is held,
// so it stays at all but one); what it sends meta meanwhile is no
// heartbeat: it goes DOWN after the down-timeout and its masters fail
// over while it is still starting. Once open it PINGs, comes back UP and
// its progress is gone.
func TestStartupProgress(t *testing.T) {
	const parts = 24
	c := inproc.StartTest(t, inproc.Options{Metas: 1, Nodes: 2,
		MetaConfig: func(_ int, cfg *metaserver.Config) { cfg.DownTimeout = 1500 * time.Millisecond }})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "t", Partitions: parts, Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	addr := c.NodeAddrs()[1]
	node := c.Node(addr)
	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
	release := testcluster.HoldOpen(t, filepath.Join(node.Dir, "t", "5"))
	restarted := make(chan error, 1)
	go func() { restarted <- node.Restart() }()

	listed := func() client.Node {
		t.Helper()
		nodes, _, err := cl.ListNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Addr == addr {
				return n
			}
		}
		t.Fatalf("%s not listed", addr)
		return client.Node{}
	}
	testcluster.Poll(t, 30*time.Second, func() error {
		if n := listed(); n.Starting == nil || n.Starting.Opened != parts-1 || n.Starting.Total != parts {
			return fmt.Errorf("%s is %s, starting %+v: want %d of %d opened", addr, n.State, n.Starting, parts-1, parts)
		}
		return nil
	})
	testcluster.Poll(t, 30*time.Second, func() error {
		n := listed()
		if n.State != "DOWN" || n.Starting == nil {
			return fmt.Errorf("%s is %s, starting %+v: want DOWN, starting", addr, n.State, n.Starting)
		}
		topo, err := cl.Pull(ctx, "t")
		if err != nil {
			return err
		}
		for _, p := range topo.Tables[0].Partitions {
			if p.Master == addr {
				return fmt.Errorf("partition %d still mastered by the starting %s", p.ID, addr)
			}
		}
		return nil
	})
	select {
	case err := <-restarted:
		t.Fatalf("restart returned (%v) with a replica held", err)
	default:
	}

	release()
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	testcluster.Poll(t, 30*time.Second, func() error {
		if n := listed(); n.State != "UP" || n.Starting != nil {
			return fmt.Errorf("%s is %s, starting %+v: want UP, not starting", addr, n.State, n.Starting)
		}
		return nil
	})
}
