package rpc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestLargeFramesNotKept: after one large answer each, idle connections
// hold no buffer of its size on either end (a meta leader sending a
// thousand nodes a 189 KB delta kept 189 MB).
func TestLargeFramesNotKept(t *testing.T) {
	if raceEnabled {
		// It counts memory, not concurrency; under the race detector
		// its 2 MiB frames take seconds.
		t.Skip("memory accounting; slow under -race")
	}
	const conns, size = 8, 2 << 20
	big := make([]byte, size)
	_, addr := startServer(t, func(ctx context.Context, req *zppb.Request) *zppb.Response {
		return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: big}}}
	}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := heap()
	var cs []*Conn
	for range conns {
		c, err := Dial(ctx, addr, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
		resp, err := c.Call(ctx, getReq("k"))
		if err != nil || len(resp.GetGet().GetValue()) != size {
			t.Fatalf("%v, %d bytes", err, len(resp.GetGet().GetValue()))
		}
	}
	// Each connection's answer is read by now; its server side has
	// written it before the client could read it whole.
	grew := heap() - before
	runtime.KeepAlive(cs)
	t.Logf("heap grew %d KB over %d idle connections after a %d KB answer each", grew>>10, conns, size>>10)
	// Kept, the buffers would be 2 x 8 x 2 MiB = 32 MiB; the rest is
	// the connections' own 64 KiB reader and writer buffers.
	if grew > conns*size/2 {
		t.Errorf("heap grew %d MB, want under %d MB", grew>>20, conns*size/2>>20)
	}
}

// TestPooledPayloads: large requests, whose marshalled form is written
// from reused buffers, reach the server intact however many are queued
// at once on one connection or several.
func TestPooledPayloads(t *testing.T) {
	_, addr := startServer(t, func(ctx context.Context, req *zppb.Request) *zppb.Response {
		v := req.GetSet().GetValue()
		return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: []byte(fmt.Sprintf("%d:%x", len(v), sha256.Sum256(v)))}}}
	}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for conn := range 3 {
		c, err := Dial(ctx, addr, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			type sent struct {
				p    *Pending
				want string
			}
			var all []sent
			for i := range 12 {
				v := bytes.Repeat([]byte{byte(conn*16 + i)}, pooledPayload+i*1000)
				p, err := c.Send(ctx, &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Key: []byte("k"), Value: v}}})
				if err != nil {
					t.Error(err)
					return
				}
				all = append(all, sent{p, fmt.Sprintf("%d:%x", len(v), sha256.Sum256(v))})
			}
			for _, s := range all {
				resp, err := s.p.Wait(ctx)
				if got := string(resp.GetGet().GetValue()); err != nil || got != s.want {
					t.Errorf("server saw %s, %v; want %s", got, err, s.want)
				}
			}
		})
	}
	wg.Wait()
}
