package cmd

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
)

// TestVersion: zpctl version and --version print the one line every binary
// prints, and version --output json its fields; no server is asked.
func TestVersion(t *testing.T) {
	line := buildinfo.Line("zpctl") + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := run(t, invocation{args: append([]string{"--meta", "127.0.0.1:1"}, args...)})
		if r.code != ExitOK || r.stdout != line {
			t.Errorf("%v: exit %d, stdout %q, want %q\n%s", args, r.code, r.stdout, line, r.stderr)
		}
	}
	if !regexp.MustCompile(`^zpctl \S+ \(go\S+ \w+/\w+\)\n$`).MatchString(line) {
		t.Errorf("version line %q", line)
	}
	r := run(t, invocation{args: []string{"version", "-o", "json"}})
	var got buildinfo.Info
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitOK {
		t.Fatalf("exit %d, %v: %s", r.code, err, r.stdout)
	}
	if got != buildinfo.Get() || got.Version == "" {
		t.Errorf("version -o json = %+v, want %+v", got, buildinfo.Get())
	}
}

// TestNodeAndMetaListOfFollower: node list shows every node's heartbeat and
// version although the meta server asked is a follower (heartbeats are the
// leader's memory), and meta list every member's version.
func TestNodeAndMetaListOfFollower(t *testing.T) {
	cl := sharedCluster(t)
	leader := leaderAddr(t, cl)
	var follower string
	for _, m := range cl.Metas {
		if m.Addr != leader && m.Server() != nil {
			follower = m.Addr
			break
		}
	}
	zp := func(args ...string) result {
		return run(t, invocation{args: append([]string{"--meta", follower, "--timeout", "5s"}, args...)})
	}

	r := zp("node", "list")
	if r.code != ExitOK {
		t.Fatalf("node list: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if h := strings.Fields(lines[0]); h[len(h)-2] != "LAST_HEARTBEAT" || h[len(h)-1] != "VERSION" {
		t.Fatalf("header %q", lines[0])
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		// ... LAST_HEARTBEAT ("1.2s ago") VERSION
		if f[len(f)-1] != buildinfo.Version || f[len(f)-2] != "ago" {
			t.Errorf("node list of follower %s: row %q lacks the heartbeat or version %s", follower, l, buildinfo.Version)
		}
	}

	r = zp("-o", "json", "node", "list")
	var nl struct {
		Nodes []map[string]any `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &nl); err != nil || len(nl.Nodes) != len(cl.Nodes) {
		t.Fatalf("node list -o json: %v\n%s", err, r.stdout)
	}
	now := float64(time.Now().UnixMilli())
	for _, n := range nl.Nodes {
		hb, _ := n["last_heartbeat_unix_ms"].(float64)
		if hb < now-60_000 || hb > now+1000 || n["version"] != buildinfo.Version {
			t.Errorf("node %v: last_heartbeat_unix_ms %v (now %v), version %v", n["addr"], hb, now, n["version"])
		}
		if _, ok := n["last_heartbeat_ms"]; ok {
			t.Errorf("node %v: the old name last_heartbeat_ms is still there", n["addr"])
		}
	}

	r = zp("meta", "list")
	if !strings.Contains(r.stdout, "VERSION") || strings.Count(r.stdout, " "+buildinfo.Version+" ") != len(cl.Metas) {
		t.Errorf("meta list: exit %d, want every member at %s:\n%s%s", r.code, buildinfo.Version, r.stdout, r.stderr)
	}
	r = zp("-o", "json", "meta", "list")
	var ml struct {
		Members []map[string]any `json:"members"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ml); err != nil || len(ml.Members) != len(cl.Metas) {
		t.Fatalf("meta list -o json: %v\n%s", err, r.stdout)
	}
	for _, m := range ml.Members {
		if m["version"] != buildinfo.Version {
			t.Errorf("member %v: version %v", m["addr"], m["version"])
		}
	}
}
