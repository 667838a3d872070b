package client

import (
	"sync"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestRefreshPullsDeltas: the client's topology refresh asks for a delta
// against its cache (since_epoch), and the merged cache routes to a table
// created since and forgets one dropped since; an explicit Pull asks for
// the whole topology, whose nodes carry the leader's heartbeats.
func TestRefreshPullsDeltas(t *testing.T) {
	cl := sharedCluster(t)
	gone := cl.addTable("gone", 2, 1)
	var mu sync.Mutex
	var since []uint64
	for _, m := range cl.Metas {
		m.SetHook(func(req *zppb.Request) *zppb.Response {
			if p := req.GetPull(); p != nil && p.GetTable() == "" {
				mu.Lock()
				since = append(since, p.GetSinceEpoch())
				mu.Unlock()
			}
			return nil
		})
	}
	c, err := New(testCtx(t), Options{MetaAddrs: cl.MetaAddrs(), DefaultTimeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cached := c.c.topo.epoch()
	if _, ok := c.c.topo.table(gone.Name); !ok {
		t.Fatalf("table %s not in the cache at epoch %d", gone.Name, cached)
	}

	if _, err := cl.admin.DropTable(testCtx(t), gone.Name, 0); err != nil {
		t.Fatal(err)
	}
	added := cl.addTable("added", 2, 1)
	// The client does not know the new table: it refreshes.
	if err := c.Set(testCtx(t), added.Name, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.c.topo.table(gone.Name); ok {
		t.Errorf("dropped table %s still in the cache", gone.Name)
	}
	mu.Lock()
	got := append([]uint64(nil), since...)
	mu.Unlock()
	if len(got) < 2 || got[0] != 0 || got[len(got)-1] < cached {
		t.Errorf("PULLs of the whole topology asked since epochs %v; want 0 first, then at least %d", got, cached)
	}

	if _, err := c.Pull(testCtx(t), ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if last := since[len(since)-1]; last != 0 {
		t.Errorf("Pull asked since epoch %d, want the whole topology", last)
	}
}
