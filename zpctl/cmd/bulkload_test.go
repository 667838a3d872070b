package cmd

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
	"github.com/zeppelin-kv/zeppelin/zpnode/replica"
)

// bulkRecords is the records of TestBulkload's file; ZP_BULKLOAD_RECORDS
// raises it (1000000 for the million).
func bulkRecords(t *testing.T) int {
	n := 50000
	if s := os.Getenv("ZP_BULKLOAD_RECORDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1000 {
			t.Fatalf("ZP_BULKLOAD_RECORDS=%q: want a number of at least 1000", s)
		}
		n = v
	}
	return n
}

func bulkKey(i int) string { return fmt.Sprintf("key%07d", i) }

// bulkFileValue is what the file says of key i: every tenth key comes
// twice, the second time with another value, which wins.
func bulkFileValue(i int) string {
	if i%10 == 0 {
		return fmt.Sprintf("dup-%d", i)
	}
	return fmt.Sprintf("file-%d", i)
}

// TestBulkload loads a gzipped TSV file with duplicates and bad lines
// (one malformed, one without a value, one key over 64 KiB) into a table
// while a node is down and clients write keys of the file before, during
// and after: too many bad lines load nothing (exit 5); with --max-errors
// the load ingests every good key, counts the duplicates, and every key
// reads back last-writer-wins in binlog order (the file over writes
// before it, writes after it over the file). The node comes back, fetches
// the files it missed from its masters, and every replica of every
// partition ends with its master's digest.
func TestBulkload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	cl := ownCluster(t, inproc.Options{MetaConfig: func(_ int, cfg *metaserver.Config) { cfg.DownTimeout = 1500 * time.Millisecond }})
	tb := addTable(t, cl, 4, 3)
	c := newClient(t, cl)
	ctx := testCtx(t)
	n := bulkRecords(t)

	path := filepath.Join(t.TempDir(), "load.tsv.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	w := bufio.NewWriter(zw)
	for i := range n {
		fmt.Fprintf(w, "%s\tfile-%d\n", bulkKey(i), i)
		if i == n/2 {
			fmt.Fprintf(w, "malformed\tline\twith\tfour\n")
			fmt.Fprintf(w, "novalue\n")
			fmt.Fprintf(w, "%s\tbig\n", strings.Repeat("k", 64<<10+1))
		}
	}
	for i := 0; i < n; i += 10 {
		fmt.Fprintf(w, "%s\t%s\n", bulkKey(i), bulkFileValue(i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	f.Close()
	badLine := n/2 + 2 // 1-based: the line after key n/2

	// Three bad lines, none allowed: nothing is ingested.
	r := zpctl(t, cl, "bulkload", tb.Name, path, "--memory", "2MiB")
	if r.code != ExitInvalid || !strings.Contains(r.stderr, fmt.Sprintf("load.tsv.gz:%d:", badLine)) {
		t.Fatalf("bulkload with bad lines: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := c.Get(ctx, tb.Name, []byte(bulkKey(1))); !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("a refused load wrote %s: %v", bulkKey(1), err)
	}

	// Written before the load: the file wins.
	var pre []client.KeyValue
	for i := 1; i < 100; i++ {
		pre = append(pre, client.KeyValue{Key: []byte(bulkKey(i)), Value: []byte("pre")})
	}
	if err := c.MSet(ctx, tb.Name, pre, 0); err != nil {
		t.Fatal(err)
	}

	// A node goes down: its replicas miss the staging.
	down := cl.Nodes[2]
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitTableWritable(ctx, tb.Name); err != nil {
		t.Fatal(err)
	}

	// Clients write keys of the file while it loads.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Each key's values written (or tried: a failed write may have been
	// applied) during the load, the last one last.
	var duringMu sync.Mutex
	during := map[string][]string{}
	wg.Go(func() {
		for j := 0; ; j++ {
			select {
			case <-stop:
				return
			default:
			}
			k, v := bulkKey(200+j%50), fmt.Sprintf("during-%d", j)
			duringMu.Lock()
			during[k] = append(during[k], v)
			duringMu.Unlock()
			c.Set(context.Background(), tb.Name, []byte(k), []byte(v), 0)
		}
	})
	r = run(t, invocation{args: []string{"--meta", leaderAddr(t, cl), "--timeout", "5s", "bulkload", tb.Name, path,
		"--max-errors", "3", "--memory", "2MiB", "-o", "json"}})
	close(stop)
	wg.Wait()
	var out bulkloadJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); r.code != ExitOK || err != nil {
		t.Fatalf("bulkload: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if out.Records != int64(n) || out.Duplicates != int64((n+9)/10) || out.BadLines != 3 || len(out.BadLineList) != 3 || out.Spilled == 0 {
		t.Errorf("bulkload reported %d records, %d duplicates, %d bad lines %q, %d bytes spilled; want %d, %d, 3, some",
			out.Records, out.Duplicates, out.BadLines, out.BadLineList, out.Spilled, n, (n+9)/10)
	}
	// Written after the load: the client wins.
	var post []client.KeyValue
	for i := 300; i < 400; i++ {
		post = append(post, client.KeyValue{Key: []byte(bulkKey(i)), Value: []byte("post")})
	}
	if err := c.MSet(ctx, tb.Name, post, 0); err != nil {
		t.Fatal(err)
	}

	// Every key, last writer wins.
	want := func(i int) string {
		switch {
		case i >= 300 && i < 400:
			return "post"
		}
		return bulkFileValue(i)
	}
	for first := 0; first < n; first += 1000 {
		var keys [][]byte
		for i := first; i < min(first+1000, n); i++ {
			keys = append(keys, []byte(bulkKey(i)))
		}
		res, err := c.MGet(ctx, tb.Name, keys)
		if err != nil {
			t.Fatal(err)
		}
		for j, got := range res {
			i := first + j
			w := want(i)
			if i >= 200 && i < 250 {
				// Written during the load: either the file (every write
				// came before its record) or a client's value.
				if slices.Contains(during[bulkKey(i)], string(got.Value)) {
					continue
				}
			}
			if !got.Found || string(got.Value) != w {
				t.Fatalf("%s = %q (found %v), want %q", keys[j], got.Value, got.Found, w)
			}
		}
	}

	// The node comes back and catches up, fetching the files it missed.
	if err := down.Restart(); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, cl, tb.Name)
	states := stopAndDigest(t, cl, tb.Name, 4)
	for p, byNode := range states {
		var first string
		for node, d := range byNode {
			if first == "" {
				first = d
				continue
			}
			if d != first {
				t.Errorf("partition %d: replicas differ: %v (node %s)", p, byNode, node)
			}
		}
	}
}

// stopAndDigest stops every node and returns, by partition and node, each
// replica's digest, key count and position (replica.Digest).
func stopAndDigest(t *testing.T, cl *inproc.Cluster, table string, parts uint32) map[uint32]map[string]string {
	t.Helper()
	for _, nd := range cl.Nodes {
		if err := nd.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	shared, err := engine.NewShared(engine.SharedOptions{BlockCacheSize: 16 << 20, WriteBufferSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	now := time.Now().UnixMilli()
	out := map[uint32]map[string]string{}
	for _, nd := range cl.Nodes {
		for p := range parts {
			dir := filepath.Join(nd.Dir, table, strconv.Itoa(int(p)))
			if _, err := os.Stat(dir); err != nil {
				continue
			}
			r, err := replica.Open(replica.Options{Dir: dir, Table: table, ID: p, Shared: shared, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("%s partition %d: %v", nd.Addr, p, err)
			}
			d, keys, err := r.Digest(now)
			_, lsn, _ := r.Position()
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			if out[p] == nil {
				out[p] = map[string]string{}
			}
			out[p][nd.Addr] = fmt.Sprintf("%s keys=%d lsn=%d", hex.EncodeToString(d[:8]), keys, lsn)
		}
	}
	for p := range parts {
		if len(out[p]) != 3 {
			t.Errorf("partition %d: %d replicas found, want 3", p, len(out[p]))
		}
	}
	return out
}

// TestBulkloadRoundTrip: export a table as JSON lines, bulk load the file
// into a new table, export that: the same keys, values (binary ones in
// base64) and expiries.
func TestBulkloadRoundTrip(t *testing.T) {
	cl := sharedCluster(t)
	src := addTable(t, cl, 3, 2)
	dst := addTable(t, cl, 2, 2)
	c := newClient(t, cl)
	var kvs []client.KeyValue
	for i := range 300 {
		kvs = append(kvs, client.KeyValue{Key: []byte(fmt.Sprintf("k%03d", i)), Value: []byte(fmt.Sprintf("value %d", i))})
	}
	for k, v := range map[string]string{"\x00\xffbin": "\x01\x02\xfe", "tab": "a\tb", "nl": "a\nb", "{tag}x": "é ü", "empty": ""} {
		kvs = append(kvs, client.KeyValue{Key: []byte(k), Value: []byte(v)})
	}
	if err := c.MSet(testCtx(t), src.Name, kvs, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(testCtx(t), src.Name, []byte("ttl"), []byte("soon"), time.Hour); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, cl, src.Name)
	export := func(table string) []string {
		t.Helper()
		p := filepath.Join(t.TempDir(), table+".jsonl")
		if r := zpctl(t, cl, "export", table, "--out", p); r.code != ExitOK {
			t.Fatalf("export %s: exit %d\n%s", table, r.code, r.stderr)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		sort.Strings(lines)
		return lines
	}
	before := export(src.Name)
	if len(before) != len(kvs)+1 {
		t.Fatalf("exported %d keys, wrote %d", len(before), len(kvs)+1)
	}
	file := filepath.Join(t.TempDir(), "src.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(before, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := zpctl(t, cl, "bulkload", dst.Name, file); r.code != ExitOK {
		t.Fatalf("bulkload: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitCaughtUp(t, cl, dst.Name)
	after := export(dst.Name)
	if strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("round trip differs:\nbefore %d lines\nafter %d lines\nfirst before %q\nfirst after %q", len(before), len(after), before[0], after[0])
	}
}

// TestBulkIngestStaleRange: a master refuses to ingest a file routed for
// a slot range its partition no longer has (a split since the load was
// routed: the file may hold keys another partition owns) with
// STALE_EPOCH, which bulkload does not retry; the range it has passes.
func TestBulkIngestStaleRange(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 2, 1)
	p := tb.Partitions[0]
	conn, err := rpc.Dial(testCtx(t), p.Master, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	begin, end := topo.SlotRange(tb, p)
	ingest := func(b, e uint32) *zppb.Response {
		t.Helper()
		resp, err := conn.Call(testCtx(t), &zppb.Request{Cmd: &zppb.Request_BulkIngest{BulkIngest: &zppb.BulkIngestRequest{
			Table: tb.Name, Partition: p.Id, File: &zppb.IngestFile{Id: "never-staged", Size: 1}, SlotBegin: b, SlotEnd: e}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := ingest(begin, end/2); resp.Code != zppb.Code_STALE_EPOCH {
		t.Fatalf("ingest routed for [%d, %d) into a partition owning [%d, %d): %v %q, want STALE_EPOCH", begin, end/2, begin, end, resp.Code, resp.Msg)
	}
	if resp := ingest(begin, end); resp.Code == zppb.Code_STALE_EPOCH || resp.Code == zppb.Code_OK {
		t.Fatalf("ingest of a file never staged, routed for the partition's range: %v %q, want a refusal other than STALE_EPOCH", resp.Code, resp.Msg)
	}
}

// TestBulkStageAttachment: a node stages a chunk sent as the request's
// attachment, says it takes them, and refuses a chunk sent both ways
// (INVALID_ARGUMENT) without staging any of it.
func TestBulkStageAttachment(t *testing.T) {
	cl := sharedCluster(t)
	tb := addTable(t, cl, 1, 1)
	p := tb.Partitions[0]
	conn, err := rpc.Dial(testCtx(t), p.Master, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stage := func(off uint64, data, att []byte) *zppb.Response {
		t.Helper()
		req := &zppb.Request{Cmd: &zppb.Request_BulkStage{BulkStage: &zppb.BulkStageRequest{
			Table: tb.Name, Partition: p.Id, Id: "attached", Offset: off, Data: data}}}
		resp, err := conn.CallAttached(testCtx(t), req, rpc.Attachment{Bytes: att})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := stage(0, nil, []byte("0123456789")); resp.Code != zppb.Code_OK || resp.GetBulkStage().GetHave() != 10 || !resp.GetBulkStage().GetTakesAttachment() {
		t.Fatalf("attached chunk: %v %q %v, want OK, 10 bytes held, takes attachments", resp.Code, resp.Msg, resp.GetBulkStage())
	}
	if resp := stage(10, []byte("abc"), []byte("def")); resp.Code != zppb.Code_INVALID_ARGUMENT {
		t.Fatalf("chunk with data and an attachment: %v %q, want INVALID_ARGUMENT", resp.Code, resp.Msg)
	}
	// Nothing of the refused chunk was staged: the next one continues at 10.
	if resp := stage(10, nil, []byte("x")); resp.Code != zppb.Code_OK || resp.GetBulkStage().GetHave() != 11 {
		t.Fatalf("chunk after the refused one: %v %q %v, want 11 bytes held", resp.Code, resp.Msg, resp.GetBulkStage())
	}
}
