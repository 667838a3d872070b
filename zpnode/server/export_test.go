package server

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestExportSessions: a session reads the checkpoint it took, not the
// writes after it, page by page; at most maxExports are open (WAIT
// beyond); End and expiry remove their checkpoints; an unknown session
// is NOT_FOUND.
func TestExportSessions(t *testing.T) {
	shared, err := engine.NewShared(engine.SharedOptions{BlockCacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	logger := slog.New(slog.DiscardHandler)
	db, err := engine.Open(filepath.Join(t.TempDir(), "db"), engine.Options{Shared: shared, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	put := func(lsn uint64, keys ...string) {
		rec := &zppb.WriteRecord{}
		for _, k := range keys {
			rec.Mutations = append(rec.Mutations, &zppb.Mutation{Kind: zppb.Mutation_PUT, Key: []byte(k), Value: []byte("v" + k)})
		}
		if err := db.Apply(lsn, 1, rec); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 25 {
		put(uint64(i+1), fmt.Sprintf("k%02d", i))
	}
	dir := filepath.Join(t.TempDir(), ".export")
	e := newExports(dir, shared, logger)
	defer e.close()
	var ids []string
	for range maxExports {
		st, err := e.start("t", 0, db.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		if st.Lsn != 25 {
			t.Fatalf("snapshot at lsn %d, want 25", st.Lsn)
		}
		ids = append(ids, st.Session)
	}
	if _, err := e.start("t", 0, db.Checkpoint); status.Code(err) != zppb.Code_WAIT {
		t.Fatalf("export beyond %d sessions: %v, want WAIT", maxExports, err)
	}
	put(26, "after")
	var keys []string
	var cursor []byte
	for {
		page, err := e.next(&zppb.ExportNextRequest{Table: "t", Partition: 0, Session: ids[0], Cursor: cursor, Count: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range page.Entries {
			keys = append(keys, string(en.Key))
		}
		if len(page.Next) == 0 {
			break
		}
		cursor = page.Next
	}
	if len(keys) != 25 || keys[0] != "k00" || keys[24] != "k24" {
		t.Fatalf("exported %d keys %v; want k00..k24, not the write after the snapshot", len(keys), keys)
	}
	if _, err := e.next(&zppb.ExportNextRequest{Table: "t", Partition: 1, Session: ids[0]}); status.Code(err) != zppb.Code_NOT_FOUND {
		t.Fatalf("another partition's session: %v, want NOT_FOUND", err)
	}
	e.end(ids[0])
	if _, err := os.Stat(filepath.Join(dir, ids[0])); !os.IsNotExist(err) {
		t.Fatalf("checkpoint of an ended session still there: %v", err)
	}
	if _, err := e.next(&zppb.ExportNextRequest{Table: "t", Partition: 0, Session: ids[0]}); status.Code(err) != zppb.Code_NOT_FOUND {
		t.Fatalf("ended session: %v, want NOT_FOUND", err)
	}
	e.expire(time.Now().Add(exportIdle + time.Minute))
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d checkpoints left after expiry", len(entries))
	}
}
