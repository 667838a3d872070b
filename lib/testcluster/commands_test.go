package testcluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestStringCommandsAndRetryAfterKill runs the string and key commands
// through the client against real nodes, then APPENDs with a request id,
// kills the master with SIGKILL and sends the same APPEND (same id) to the
// promoted slave: it is answered with the first length and not applied
// again.
func TestStringCommandsAndRetryAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{NodeArgs: []string{"--ping-interval", "1s"}})
	cl := newClient(t, c)
	createTable(t, cl, client.TableSpec{Name: "t", Partitions: 1, Replicas: 3, MinSyncReplicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	r, err := cl.SetWith(ctx, "t", []byte("k"), []byte("a"), client.SetOptions{Condition: client.SetIfAbsent, TTL: time.Hour})
	if err != nil || !r.Applied {
		t.Fatalf("SET NX of a new key: %+v, %v", r, err)
	}
	if r, err = cl.SetWith(ctx, "t", []byte("k"), []byte("b"), client.SetOptions{Condition: client.SetIfAbsent}); err != nil || r.Applied {
		t.Fatalf("SET NX of an existing key: %+v, %v", r, err)
	}
	if old, found, err := cl.GetSet(ctx, "t", []byte("k"), []byte("c")); err != nil || !found || string(old) != "a" {
		t.Fatalf("GETSET: %q %v %v", old, found, err)
	}
	if ttl, err := cl.TTL(ctx, "t", []byte("k")); err != nil || ttl != client.NoExpiry {
		t.Fatalf("after GETSET the TTL is %v, %v; want none", ttl, err)
	}
	if ok, err := cl.Expire(ctx, "t", []byte("k"), time.Hour, client.ExpireIfLater); err != nil || ok {
		t.Fatalf("EXPIRE GT on a key without expiry: %v, %v", ok, err)
	}
	if ok, err := cl.Expire(ctx, "t", []byte("k"), time.Hour, client.ExpireIfNone); err != nil || !ok {
		t.Fatalf("EXPIRE NX: %v, %v", ok, err)
	}
	if n, err := cl.Append(ctx, "t", []byte("k"), []byte("de")); err != nil || n != 3 {
		t.Fatalf("APPEND: %d, %v", n, err)
	}
	if ok, err := cl.Persist(ctx, "t", []byte("k")); err != nil || !ok {
		t.Fatalf("PERSIST after APPEND (which keeps the expiry): %v, %v", ok, err)
	}
	if v, err := cl.GetDel(ctx, "t", []byte("k")); err != nil || string(v) != "cde" {
		t.Fatalf("GETDEL: %q, %v", v, err)
	}
	if _, err := cl.GetDel(ctx, "t", []byte("k")); !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("GETDEL of a deleted key: %v", err)
	}
	if v, err := cl.IncrByFloat(ctx, "t", []byte("f"), 10.5); err != nil || v != 10.5 {
		t.Fatalf("INCRBYFLOAT: %v, %v", v, err)
	}

	// APPEND with an id, answered by the master (min_sync_replicas=1: a
	// slave has it), then the master dies and the retry goes to the new one.
	victim := masterOf(t, cl, "t", 0)
	appendReq := func() *zppb.Request {
		return &zppb.Request{RequestId: []byte("append-once"), Cmd: &zppb.Request_SetRange{SetRange: &zppb.SetRangeRequest{Table: "t", Key: []byte("log"), Value: []byte("x"), Append: true}}}
	}
	for range 3 {
		if _, err := cl.Append(ctx, "t", []byte("log"), []byte("y")); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.Call(ctx, victim, appendReq())
	if err != nil || resp.Code != zppb.Code_OK || resp.GetSetRange().GetLength() != 4 {
		t.Fatalf("APPEND on the master: %v, %v", resp, err)
	}
	if err := c.NodeByAddr(victim).Kill(); err != nil {
		t.Fatal(err)
	}
	var promoted string
	testcluster.Poll(t, time.Minute, func() error {
		if promoted = masterOf(t, cl, "t", 0); promoted == victim || promoted == "" {
			return errors.New("no new master yet")
		}
		resp, err = c.Call(ctx, promoted, appendReq())
		if err == nil && resp.Code != zppb.Code_OK {
			err = status.FromResponse(resp)
		}
		return err
	})
	if got := resp.GetSetRange().GetLength(); got != 4 {
		t.Fatalf("the retried APPEND answered length %d on %s, want the first answer 4", got, promoted)
	}
	if v, err := cl.Get(ctx, "t", []byte("log")); err != nil || string(v) != "yyyx" {
		t.Fatalf("after the retry the value is %q, %v; want yyyx (appended once)", v, err)
	}
}
