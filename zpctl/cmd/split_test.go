package cmd

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

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

// TestTableSplitSize: `table create --split-size` and `table alter
// --split-size` set a table's automatic split size, `table describe` and
// `table list` show it (JSON too), and bad sizes are refused; a split
// planned without --at shows the point is by size.
func TestTableSplitSize(t *testing.T) {
	cl := sharedCluster(t)
	name := "splitsize"
	r := zpctl(t, cl, "table", "create", name, "--partitions", "2", "--replicas", "1", "--split-size", "64MiB", "-o", "json")
	if r.code != ExitOK {
		t.Fatalf("create: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var created struct {
		SplitSize uint64 `json:"split_size"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.SplitSize != 64<<20 {
		t.Fatalf("create: split size %d (%v): %s", created.SplitSize, err, r.stdout)
	}
	r = zpctl(t, cl, "table", "alter", name, "--split-size", "1GiB", "-o", "json")
	var altered alterJSON
	if err := json.Unmarshal([]byte(r.stdout), &altered); err != nil || r.code != ExitOK || altered.SplitSize != 1<<30 || altered.Epoch == 0 {
		t.Fatalf("alter: exit %d, %+v (%v)\n%s", r.code, altered, err, r.stderr)
	}
	r = zpctl(t, cl, "table", "describe", name)
	mustContain(t, "stdout", r.stdout, "split size:", "1.0 GiB")
	// Without --at the plan leaves the point to the master.
	r = zpctl(t, cl, "table", "split", name, "0", "--dry-run")
	mustContain(t, "stdout", r.stdout, "the upper half by size to a new partition")
	r = zpctl(t, cl, "table", "alter", name, "--split-size", "off")
	mustContain(t, "stdout", r.stdout, "split size:", "off")
	r = zpctl(t, cl, "table", "list", "-o", "json")
	var list tableListJSON
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatal(err)
	}
	for _, tb := range list.Tables {
		if tb.Name == name && tb.SplitSize != 0 {
			t.Fatalf("list after alter off: split size %d", tb.SplitSize)
		}
	}
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"table", "alter", name}, ExitUsage},
		{[]string{"table", "alter", name, "--split-size", "lots"}, ExitUsage},
		{[]string{"table", "alter", name, "--split-size", "1000"}, ExitInvalid},
		{[]string{"table", "alter", "nosuch", "--split-size", "1GiB"}, ExitNotFound},
		{[]string{"table", "create", "tiny", "--split-size", "1KiB"}, ExitInvalid},
	} {
		if r := zpctl(t, cl, tt.args...); r.code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, r.code, tt.code, r.stderr)
		}
	}
}

// TestKeysWalkAcrossSplit: a whole-table key walk during which a
// partition it has not reached yet splits returns the keys that moved to
// the new partition (numbered after the count the walk started with).
func TestKeysWalkAcrossSplit(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 2, 2)
	c := newClient(t, cl)
	ctx := testCtx(t)
	want := map[string]bool{}
	for i := range 200 {
		k := fmt.Sprintf("k%03d", i)
		if err := c.Set(ctx, tb.Name, []byte(k), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		want[k] = true
	}
	// keysOf counts partition 1's keys.
	keysOf := func() int {
		n := 0
		var cursor []byte
		for {
			kvs, next, err := c.ScanPartition(ctx, tb.Name, 1, cursor, 100, true)
			if err != nil {
				t.Fatal(err)
			}
			n += len(kvs)
			if next == nil {
				return n
			}
			cursor = next
		}
	}
	seen := map[string]bool{}
	split := false
	_, err := (&app{}).walkKeys(ctx, c, tb.Name, nil, keysCursor{}, 10, func(k []byte) bool {
		seen[string(k)] = true
		if !split {
			// The walk is in partition 0: split partition 1, and go on
			// once its trim has removed the child's keys from it.
			split = true
			before := keysOf()
			r := zpctl(t, cl, "table", "split", tb.Name, "1", "--yes", fast)
			if r.code != ExitOK {
				t.Fatalf("split: exit %d\n%s", r.code, r.stderr)
			}
			deadline := time.Now().Add(10 * time.Second)
			for keysOf() == before {
				if time.Now().After(deadline) {
					t.Fatalf("partition 1 still holds its %d keys after the split", before)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := pullTable(t, cl, tb.Name).PartitionCount; got != 3 {
		t.Fatalf("%d partitions after the split", got)
	}
	var missing []string
	for k := range want {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the walk missed %d keys, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
}
