package cmd

import (
	"encoding/json"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/topo"
)

// TestTableSplit: `table split` splits one partition at a slot and then
// every partition, followed to the end; the table's ranges cover every
// slot once; `migrate status --all` lists the splits; bad arguments are
// usage errors and an impossible slot is refused by the meta leader.
func TestTableSplit(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 2, 2)
	r := zpctl(t, cl, "table", "split", tb.Name, "0", "--at", "1000", "--yes", "-o", "json", fast)
	if r.code != ExitOK {
		t.Fatalf("split: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var res operationJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if !res.Waited || res.Done != 1 || len(res.Moves) != 1 || res.Moves[0].SplitAt != 1000 || res.Moves[0].SplitChild != 2 {
		t.Fatalf("split result %+v", res)
	}
	got := pullTable(t, cl, tb.Name)
	if got.PartitionCount != 3 || got.Partitions[0].SlotEnd != 1000 || got.Partitions[2].SlotBegin != 1000 || got.Partitions[2].SlotEnd != 8192 {
		t.Fatalf("after the split: %v", got)
	}

	r = zpctl(t, cl, "table", "split", tb.Name, "--all", "--yes", fast)
	if r.code != ExitOK {
		t.Fatalf("split --all: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "stderr", r.stderr, "split: done, 3/3 moves")
	got = pullTable(t, cl, tb.Name)
	if got.PartitionCount != 6 {
		t.Fatalf("after split --all: %d partitions", got.PartitionCount)
	}
	if _, err := topo.SlotMap(got); err != nil {
		t.Fatal(err)
	}
	r = zpctl(t, cl, "migrate", "status", "--all")
	mustContain(t, "stdout", r.stdout, "split", "at 1000 -> partition 2")

	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"table", "split", tb.Name}, ExitUsage},
		{[]string{"table", "split", tb.Name, "0", "--all"}, ExitUsage},
		{[]string{"table", "split", tb.Name, "--all", "--at", "5"}, ExitUsage},
		{[]string{"table", "split", tb.Name, "x"}, ExitUsage},
		{[]string{"table", "split", tb.Name, "0", "--at", "16000", "--yes"}, ExitInvalid},
		{[]string{"table", "split", tb.Name, "99", "--yes"}, ExitInvalid},
		{[]string{"table", "split", "nosuch", "0", "--yes"}, ExitNotFound},
	} {
		if r := zpctl(t, cl, append(tt.args, fast)...); r.code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, r.code, tt.code, r.stderr)
		}
	}
}
