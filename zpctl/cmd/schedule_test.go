package cmd

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
)

// TestScheduleCommand: schedule set/pause/resume change the leader's
// settings (bad ones are usage errors that change nothing); while paused
// a partition left short of replicas stays so and show says why; resumed,
// the scheduler adds the replica back and records the decision.
func TestScheduleCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := ownCluster(t, inproc.Options{MetaConfig: func(_ int, c *metaserver.Config) { c.Scheduler = true }})
	show := func() client.ScheduleStatus {
		t.Helper()
		r := zpctl(t, cl, "-o", "json", "schedule", "show")
		var st client.ScheduleStatus
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != ExitOK {
			t.Fatalf("schedule show: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
		}
		return st
	}
	if r := zpctl(t, cl, "schedule", "set", "down-timeout", "5m", "max-moves", "3"); r.code != ExitOK || !strings.Contains(r.stdout, "down-timeout 5m0s") {
		t.Fatalf("set: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{
		{"set", "bogus", "1"}, {"set", "max-moves", "0"}, {"set", "down-timeout"}, {"set", "down-timeout", "-5s"}, {"set", "master-balance", "maybe"},
	} {
		if r := zpctl(t, cl, append([]string{"schedule"}, args...)...); r.code != ExitUsage {
			t.Errorf("schedule %v: exit %d, want %d: %s", args, r.code, ExitUsage, r.stderr)
		}
	}
	if st := show(); st.Settings.DownTimeoutMs != (5*time.Minute).Milliseconds() || st.Settings.MaxMoves != 3 || !st.Settings.MasterBalance || st.Settings.Paused {
		t.Fatalf("settings after set: %+v", st.Settings)
	}
	if r := zpctl(t, cl, "schedule", "pause"); r.code != ExitOK || !strings.Contains(r.stdout, "PAUSED") {
		t.Fatalf("pause: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}

	tb := addTable(t, cl, 4, 2)
	p := layout(t, cl, tb.Name)[1]
	if r := zpctl(t, cl, "removeslave", tb.Name, "1", p.Slaves[0], "--yes"); r.code != ExitOK {
		t.Fatalf("removeslave: exit %d: %s", r.code, r.stderr)
	}
	st := show()
	if len(st.UnderReplicated) != 1 || st.UnderReplicated[0].Partition != 1 || !strings.HasPrefix(st.Doing, "paused") {
		t.Fatalf("paused with a partition short: %+v", st)
	}

	if r := zpctl(t, cl, "schedule", "resume"); r.code != ExitOK {
		t.Fatalf("resume: exit %d: %s", r.code, r.stderr)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		st = show()
		if len(st.UnderReplicated) == 0 && st.MovesInFlight == 0 && len(layout(t, cl, tb.Name)[1].Slaves) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition 1 not repaired: %+v, layout %+v", st, layout(t, cl, tb.Name)[1])
		}
		time.Sleep(200 * time.Millisecond)
	}
	kinds := make([]string, 0, len(st.Events))
	for _, e := range st.Events {
		kinds = append(kinds, e.Kind)
	}
	if !slices.Contains(kinds, "repair") || !slices.Contains(kinds, "settings") {
		t.Errorf("events %v; want settings and repair", kinds)
	}
	// The full-sync rate reaches every node with its PINGs.
	if r := zpctl(t, cl, "schedule", "set", "fullsync-rate", "100KiB"); r.code != ExitInvalid {
		t.Errorf("fullsync-rate under 1 MiB/s: exit %d, want %d: %s", r.code, ExitInvalid, r.stderr)
	}
	if r := zpctl(t, cl, "schedule", "set", "fullsync-rate", "8MiB"); r.code != ExitOK || !strings.Contains(r.stdout, "fullsync-rate 8.0 MiB/s") {
		t.Fatalf("set fullsync-rate: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	c := newClient(t, cl)
	deadline = time.Now().Add(30 * time.Second)
	for _, n := range cl.Nodes {
		for {
			info, err := c.Info(testCtx(t), n.Addr, client.InfoServer, "")
			if err == nil && info.Server.FullSyncRate == 8<<20 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s serves full syncs at %+v, %v; want 8 MiB/s", n.Addr, info.Server, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if r := zpctl(t, cl, "schedule", "show"); !strings.Contains(r.stdout, "repair") || !strings.Contains(r.stdout, fmt.Sprintf("%s/1 has 1 of 2 replicas", tb.Name)) {
		t.Errorf("show does not list the repair:\n%s", r.stdout)
	}
}
