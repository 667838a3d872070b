package cmd

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestNodeInfoStarting: node info of a node that is still opening its
// replicas (one held open), which does not answer, shows how far it got
// as the meta leader has it, in text and JSON, and exits as for an
// unreachable node; node list shows it in the state column and JSON.
func TestNodeInfoStarting(t *testing.T) {
	cl := ownCluster(t, inproc.Options{Metas: 1, Nodes: 1, MetaConfig: slowDown})
	tb := addTable(t, cl, 4, 1)
	node := cl.Nodes[0]
	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
	release := testcluster.HoldOpen(t, filepath.Join(node.Dir, tb.Name, "2"))
	restarted := make(chan error, 1)
	go func() { restarted <- node.Restart() }()
	defer func() {
		release()
		if err := <-restarted; err != nil {
			t.Error(err)
		}
	}()

	testcluster.Poll(t, 20*time.Second, func() error {
		if r := zpctl(t, cl, "node", "list"); !strings.Contains(r.stdout, "(starting 3/4)") {
			return fmt.Errorf("node list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		return nil
	})
	r := zpctl(t, cl, "-o", "json", "node", "list")
	var list struct {
		Nodes []struct {
			Starting *struct{ Opened, Total uint32 }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Nodes) != 1 || list.Nodes[0].Starting == nil ||
		list.Nodes[0].Starting.Opened != 3 || list.Nodes[0].Starting.Total != 4 {
		t.Errorf("node list -o json: exit %d, %v, want the node starting, 3 of 4 opened\nstdout: %s", r.code, err, r.stdout)
	}
	// The node's listener is bound (inproc) but not served: INFO waits
	// for the whole --timeout.
	info := func(args ...string) result {
		return run(t, invocation{args: append([]string{"--meta", leaderAddr(t, cl), "--timeout", "1s"}, args...)})
	}
	r = info("node", "info", node.Addr)
	if r.code != ExitUnavailable || !regexp.MustCompile(`\nstarting: +opened 3 of 4 replicas, \d+/s, ETA `).MatchString(r.stdout) || !strings.Contains(r.stderr, "is starting") {
		t.Errorf("node info: exit %d, want %d\nstdout: %s\nstderr: %s", r.code, ExitUnavailable, r.stdout, r.stderr)
	}
	r = info("-o", "json", "node", "info", node.Addr)
	var out struct {
		Node struct {
			Starting struct{ Opened, Total uint32 }
		}
		Server any
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("node info -o json: exit %d, %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
	}
	if r.code != ExitUnavailable || out.Node.Starting.Opened != 3 || out.Node.Starting.Total != 4 || out.Server != nil {
		t.Errorf("node info -o json: exit %d, %+v, want %d, 3 of 4 opened, no server section\nstdout: %s", r.code, out, ExitUnavailable, r.stdout)
	}
}
