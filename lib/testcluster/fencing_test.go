package testcluster_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// fastFailover makes meta mark a node DOWN after 2 s (lease 1.33 s), so a
// failover takes about half the default.
var fastFailover = []string{"--down-timeout", "2s"}

// sentWrite is one write a test sent straight to a node, and its answer.
type sentWrite struct {
	key  string
	sent time.Time
	err  error
}

// TestMasterCutFromMetaIsFenced cuts a master off from the meta servers
// only, while clients still reach it and write to it: once meta has made
// another node master, no write sent to the old one is answered OK (its
// lease ran out, it answers WAIT), and no write it acknowledged is lost.
func TestMasterCutFromMetaIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Proxies: true, MetaArgs: fastFailover})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3, MinSyncReplicas: 1})
	old := masterOf(t, cl, "t", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var (
		mu     sync.Mutex
		writes []sentWrite
		// newSeen is when an answer naming the new master came back:
		// meta had committed it by then.
		newSeen time.Time
	)
	stopWriters := startLoops(t, 2, func(w, i int) error {
		k := fmt.Sprintf("w%d-%d", w, i)
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		defer wcancel()
		sent := time.Now()
		_, err := c.Call(wctx, old, &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: "t", Key: []byte(k), Value: []byte(k)}}})
		mu.Lock()
		writes = append(writes, sentWrite{key: k, sent: sent, err: err})
		mu.Unlock()
		return err
	})
	// count returns the writes answered OK, and how many writes sent after
	// the new master was seen were answered at all.
	count := func() (ok, after int) {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range writes {
			if w.err == nil {
				ok++
			}
			if !newSeen.IsZero() && w.sent.After(newSeen) {
				after++
			}
		}
		return ok, after
	}
	testcluster.Poll(t, 30*time.Second, func() error {
		if ok, _ := count(); ok < 100 {
			return fmt.Errorf("%d writes acknowledged", ok)
		}
		return nil
	})

	if err := c.NodeByAddr(old).CutFromMeta(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	testcluster.Poll(t, 30*time.Second, func() error {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		topo, err := cl.Pull(pctx, "t")
		if err != nil {
			return err
		}
		if m := topo.Tables[0].Partitions[0].Master; m == old {
			return fmt.Errorf("%s is still master", old)
		}
		mu.Lock()
		newSeen = time.Now()
		mu.Unlock()
		return nil
	})
	t.Logf("new master seen %v after the cut", newSeen.Sub(cut).Round(time.Millisecond))
	// Keep writing to the old master for a while after that.
	testcluster.Poll(t, 30*time.Second, func() error {
		if _, after := count(); after < 20 {
			return fmt.Errorf("%d writes sent to the old master since the new one was seen", after)
		}
		return nil
	})
	stopWriters()

	var acked []string
	fenced, unfenced := 0, 0
	for _, w := range writes {
		if w.err == nil {
			acked = append(acked, w.key)
			if w.sent.After(newSeen) {
				if unfenced++; unfenced <= 5 {
					t.Errorf("write %s sent to the cut-off master %v after the new master was seen was answered OK", w.key, w.sent.Sub(newSeen))
				}
			}
		} else if status.Code(w.err) == zppb.Code_WAIT && strings.Contains(w.err.Error(), "lease") {
			fenced++
		}
	}
	if unfenced > 0 {
		t.Errorf("%d writes answered OK by the cut-off master after its replacement", unfenced)
	}
	if fenced == 0 {
		t.Errorf("the cut-off master never answered WAIT for its lease")
	}
	t.Logf("%d writes to the old master: %d acknowledged, %d refused for the lease", len(writes), len(acked), fenced)

	// Healed, it rejoins as a slave, and every write it acknowledged is
	// there (min_sync_replicas=1: a slave had it, and the most up-to-date
	// slave was promoted).
	if err := c.NodeByAddr(old).Heal(); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, "t", 1, 3, time.Minute)
	err := parallel(len(acked), 8, func(i int) error {
		v, err := cl.Get(ctx, "t", []byte(acked[i]))
		if err != nil || string(v) != acked[i] {
			return fmt.Errorf("acknowledged %s: %q, %v", acked[i], v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := masterOf(t, cl, "t", 0); m == old {
		t.Fatalf("%s is master again", old)
	}
}
