package testcluster_test

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestOneVersionEverywhere: zpmeta --version and zpnode --version print one
// version in one format, and the running servers report that version
// wherever an operator looks: LIST_META of every member, LIST_NODES (the
// nodes' PINGs) asked of any member, INFO server, RESP INFO server and the
// build_info metrics of nodes and meta servers.
func TestOneVersionEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped with -short")
	}
	c := testcluster.Start(t, testcluster.Options{Metas: 2, Nodes: 2, Metrics: true, Redis: true})
	lineRE := regexp.MustCompile(`^(zpmeta|zpnode) (\S+) \(go\S+ \w+/\w+\)\n$`)
	var version string
	for _, bin := range []string{"zpmeta", "zpnode"} {
		out, err := exec.Command(c.Binary(bin), "--version").Output()
		m := lineRE.FindStringSubmatch(string(out))
		if err != nil || m == nil || m[1] != bin {
			t.Fatalf("%s --version: %v: %q", bin, err, out)
		}
		if version == "" {
			version = m[2]
		} else if m[2] != version {
			t.Fatalf("zpmeta --version says %s, zpnode --version %s: one build, one version", version, m[2])
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, meta := range c.MetaAddrs() {
		cl, err := client.New(ctx, client.Options{MetaAddrs: []string{meta}})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		st, err := cl.ListMeta(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st.Members {
			if m.Version != version {
				t.Errorf("LIST_META: member %s reports version %q, want %q", m.Addr, m.Version, version)
			}
		}
		// Nodes report their version with every PING: any member has
		// it at once (a follower asks the leader).
		nodes, _, err := cl.ListNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Version != version || n.LastHeartbeatUnixMs == 0 {
				t.Errorf("LIST_NODES of %s: node %s version %q, heartbeat %d; want %q and a heartbeat", meta, n.Addr, n.Version, n.LastHeartbeatUnixMs, version)
			}
		}
	}

	for _, m := range c.Metas {
		if _, ok := metricValue(scrape(t, m.MetricsAddr), "zeppelin_meta_build_info", map[string]string{"version": version}); !ok {
			t.Errorf("%s: zeppelin_meta_build_info{version=%q} missing", m.Addr, version)
		}
	}

	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, n := range c.Nodes {
		info, err := cl.Info(ctx, n.Addr, client.InfoServer, "")
		if err != nil {
			t.Fatal(err)
		}
		if info.Server.Version != version {
			t.Errorf("INFO server of %s: version %q, want %q", n.Addr, info.Server.Version, version)
		}
		rdb := redis.NewClient(&redis.Options{Addr: n.RedisAddr, DisableIdentity: true})
		resp, err := rdb.Info(ctx, "server").Result()
		rdb.Close()
		if err != nil || !strings.Contains(resp, "\r\nzeppelin_version:"+version+"\r\n") {
			t.Errorf("RESP INFO server of %s: %v\n%s", n.RedisAddr, err, resp)
		}
		if _, ok := metricValue(scrape(t, n.MetricsAddr), "zeppelin_node_build_info", map[string]string{"version": version}); !ok {
			t.Errorf("%s: zeppelin_node_build_info{version=%q} missing", n.Addr, version)
		}
	}
}
