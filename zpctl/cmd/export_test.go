package cmd

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// TestExport writes text keys, a binary key and value, values with a tab
// and a newline, and a key that expires, then exports the table as JSON
// lines to a file and as TSV to stdout: both hold every key once, with its
// value (base64 where not printable) and expiry.
func TestExport(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 3, 2)
	c := newClient(t, cl)
	want := map[string]string{}
	var kvs []client.KeyValue
	for i := range 250 {
		k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("value %d", i)
		want[k] = v
		kvs = append(kvs, client.KeyValue{Key: []byte(k), Value: []byte(v)})
	}
	for k, v := range map[string]string{"\x00\xffbin": "\x01\x02\xfe", "tab": "a\tb", "nl": "a\nb", "base64:x": "base64:y", "{tag}x": "é ü"} {
		want[k] = v
		kvs = append(kvs, client.KeyValue{Key: []byte(k), Value: []byte(v)})
	}
	if err := c.MSet(testCtx(t), tb.Name, kvs, 0); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := c.Set(testCtx(t), tb.Name, []byte("ttl"), []byte("soon"), time.Hour); err != nil {
		t.Fatal(err)
	}
	want["ttl"] = "soon"
	// An export reads an in-sync slave, which may be a few records
	// behind: wait until none is, so that it has every key written.
	waitCaughtUp(t, cl, tb.Name)
	checkExpiry := func(k string, ms int64) {
		t.Helper()
		if k != "ttl" && ms != 0 || k == "ttl" && (ms < before.Add(time.Hour).UnixMilli()-1000 || ms > time.Now().Add(time.Hour).UnixMilli()+1000) {
			t.Errorf("key %q exported with expiry %d", k, ms)
		}
	}

	out := filepath.Join(t.TempDir(), "keys.jsonl")
	r := zpctl(t, cl, "export", tb.Name, "--out", out, "--page", "7", "-o", "json")
	var sum exportJSON
	if err := json.Unmarshal([]byte(r.stdout), &sum); r.code != ExitOK || err != nil || sum.Keys != int64(len(want)) || sum.Partitions != 3 {
		t.Fatalf("export jsonl: exit %d, %v, %+v\n%s%s", r.code, err, sum, r.stdout, r.stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		k := text(t, l.Key, l.KeyBase64)
		if _, dup := got[k]; dup {
			t.Fatalf("key %q exported twice", k)
		}
		got[k] = text(t, l.Value, l.ValueBase64)
		checkExpiry(k, l.ExpireAtMs)
	}
	sameMap(t, "jsonl", got, want)

	r = zpctl(t, cl, "export", tb.Name, "--format", "tsv")
	if r.code != ExitOK {
		t.Fatalf("export tsv: exit %d\n%s", r.code, r.stderr)
	}
	got = map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		fields := strings.Split(line, "\t")
		if len(fields) != 3 {
			t.Fatalf("tsv line %q", line)
		}
		ms, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		k := tsvField(t, fields[0])
		got[k] = tsvField(t, fields[1])
		checkExpiry(k, ms)
	}
	sameMap(t, "tsv", got, want)
	if r := zpctl(t, cl, "export", "nosuch"); r.code != ExitNotFound {
		t.Fatalf("export of no table: exit %d\n%s", r.code, r.stderr)
	}
}

func text(t *testing.T, s, b64 *string) string {
	t.Helper()
	switch {
	case s != nil && b64 == nil:
		return *s
	case b64 != nil && s == nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Fatalf("a field with both or neither of text and base64: %v %v", s, b64)
	return ""
}

func tsvField(t *testing.T, s string) string {
	t.Helper()
	if b, ok := strings.CutPrefix(s, tsvBase64); ok {
		d, err := base64.StdEncoding.DecodeString(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(d)
	}
	return s
}

func sameMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d keys exported, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: key %q exported as %q, want %q", what, k, got[k], v)
		}
	}
}

// waitCaughtUp waits until every master of table sees each of its slaves
// with no record left to pull.
func waitCaughtUp(t *testing.T, cl *inproc.Cluster, table string) {
	t.Helper()
	lc := leaderClient(t, cl)
	testcluster.Poll(t, 20*time.Second, func() error {
		for _, ni := range lc.InfoNodes(testCtx(t), cl.NodeAddrs(), table, client.InfoReplication) {
			for _, ri := range ni.Info.Replication {
				if ri.Role != "master" {
					continue
				}
				for _, p := range ri.Peers {
					if p.LagRecords != 0 || p.LSN != ri.LSN {
						return fmt.Errorf("slave %s of %d at lsn %d, master at %d", p.Addr, ri.Partition, p.LSN, ri.LSN)
					}
				}
			}
		}
		return nil
	})
}
