package cmd

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestMetaAddRemove runs `meta add` and `meta remove` against real zpmeta
// processes: a server started with --bootstrap=false is added, demoted,
// promoted, re-added; the leader is removed; re-runs are no-ops; bad input
// and the last voter are refused with their exit codes.
func TestMetaAddRemove(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real meta servers; skipped with -short")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := c.MetaAddrs()
	joiner := c.StartJoiningMeta().Addr
	// The operator's --meta list names every server, the joiner included.
	meta := strings.Join(c.MetaAddrs(), ",")
	zp := func(args ...string) result {
		return run(t, invocation{args: append([]string{"--meta", meta, "--timeout", "15s"}, args...)})
	}
	members := func(addrs ...string) map[string]string {
		out := make(map[string]string)
		for _, a := range addrs {
			out[a] = "voter"
		}
		return out
	}
	with := func(m map[string]string, addr, suffrage string) map[string]string {
		m = maps.Clone(m)
		m[addr] = suffrage
		return m
	}
	all := members(append(old, joiner)...)
	remaining := members(joiner)
	for i, a := range old {
		if i != leader {
			remaining[a] = "voter"
		}
	}

	tests := []struct {
		name string
		args []string
		want map[string]string // address -> suffrage after the command
	}{
		{"add", []string{"meta", "add", joiner}, all},
		{"add again", []string{"meta", "add", joiner}, all},
		{"demote", []string{"meta", "add", joiner, "--nonvoter"}, with(all, joiner, "nonvoter")},
		{"promote", []string{"meta", "add", joiner}, all},
		{"remove the leader", []string{"meta", "remove", old[leader]}, remaining},
		{"remove again", []string{"meta", "remove", old[leader]}, remaining},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := zp(append([]string{"-o", "json"}, tt.args...)...)
			if r.code != ExitOK {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			var st client.MetaStatus
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
			}
			got := make(map[string]string)
			for _, m := range st.Members {
				// A configured address outside the configuration is
				// listed without suffrage.
				if m.Suffrage != "" {
					got[m.Addr] = m.Suffrage
				}
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("members %v, want %v\n%s", got, tt.want, r.stdout)
			}
			if _, ok := tt.want[st.Leader]; !ok || tt.want[st.Leader] != "voter" {
				t.Fatalf("leader %q is not a voter of %v", st.Leader, tt.want)
			}
		})
	}
	if t.Failed() {
		return
	}
	// The removed leader is stopped, as the procedure says; the rest carry
	// on without it.
	if err := c.Metas[leader].Stop(); err != nil {
		t.Fatal(err)
	}
	if r := zp("table", "list"); r.code != ExitOK {
		t.Fatalf("table list after removing the leader: exit %d: %s", r.code, r.stderr)
	}

	refusals := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"malformed address", []string{"meta", "add", "nocolon"}, ExitInvalid, "host:port"},
		{"bad port", []string{"meta", "remove", "127.0.0.1:99999"}, ExitInvalid, "port"},
		{"address that does not answer", []string{"meta", "add", old[leader]}, ExitInvalid, "does not answer"},
		{"no address", []string{"meta", "add"}, ExitUsage, "accepts 1 arg"},
		{"unknown flag", []string{"meta", "remove", joiner, "--nonvoter"}, ExitUsage, "unknown flag"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			r := zp(append([]string{"-o", "json"}, tt.args...)...)
			if r.code != tt.wantCode || r.stdout != "" || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
		})
	}

	t.Run("last voter", func(t *testing.T) {
		// Removed servers left running answer UNAVAILABLE: zpctl moves on.
		last := joiner
		for a := range remaining {
			if a != last {
				if r := zp("meta", "remove", a); r.code != ExitOK {
					t.Fatalf("remove %s: exit %d: %s", a, r.code, r.stderr)
				}
			}
		}
		r := zp("-o", "json", "meta", "remove", last)
		var e errorJSON
		if err := json.Unmarshal([]byte(r.stderr), &e); err != nil {
			t.Fatalf("stderr is not JSON: %v\n%s", err, r.stderr)
		}
		if r.code != ExitInvalid || e.ExitCode != ExitInvalid || e.Status != "INVALID_ARGUMENT" || !strings.Contains(e.Error, "last voter") {
			t.Fatalf("exit %d, stderr %+v", r.code, e)
		}
		// The table form of the membership, with the last voter leading.
		r = zp("meta", "add", last)
		if r.code != ExitOK || !strings.Contains(r.stdout, "leader: "+last) {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	})
}
