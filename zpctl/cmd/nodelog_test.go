package cmd

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestNodeLogs: `node logs -o json` lists what the node logged, here the
// topology of a table just created, oldest first; --lines and --level
// cut it.
func TestNodeLogs(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 1, 1)
	node := tb.Partitions[0].Master
	logs := func(args ...string) nodeLogsJSON {
		t.Helper()
		r := zpctl(t, cl, append([]string{"-o", "json", "node", "logs", node}, args...)...)
		if r.code != ExitOK {
			t.Fatalf("node logs %v: exit %d: %s", args, r.code, r.stderr)
		}
		var doc nodeLogsJSON
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		return doc
	}
	all := logs("--lines", "0")
	found := false
	for i, l := range all.Lines {
		if i > 0 && l.TimeMs < all.Lines[i-1].TimeMs {
			t.Fatalf("line %d older than the one before: %+v", i, all.Lines)
		}
		// Other tests move the shared cluster's epoch too: the node may
		// have jumped past the table's.
		var epoch uint64
		if _, err := fmt.Sscanf(l.Attrs, "epoch=%d ", &epoch); err == nil && l.Message == "new topology" && l.Level == "INFO" && epoch >= tb.CreatedEpoch {
			found = l.Time != ""
		}
	}
	if all.Addr != node || all.Level != "INFO" || !found {
		t.Fatalf("no new topology at epoch %d or later: %+v", tb.CreatedEpoch, all)
	}
	if one := logs("--lines", "1"); len(one.Lines) != 1 {
		t.Fatalf("--lines 1: %+v", one.Lines)
	}
	errs := logs("--level", "error")
	for _, l := range errs.Lines {
		if l.Level != "ERROR" {
			t.Fatalf("--level error: %+v", l)
		}
	}
	if errs.Level != "ERROR" || errs.Lines == nil {
		t.Fatalf("--level error: %+v", errs)
	}
}
