package rpc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// eventLog records what the server did with each request, in order.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

func (l *eventLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

type loggedPrepared struct {
	log *eventLog
	key string
}

func (p loggedPrepared) Flush() { p.log.add("flush %s", p.key) }
func (p loggedPrepared) Finish() *zppb.Response {
	p.log.add("finish %s", p.key)
	return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: []byte(p.key)}}}
}

// TestPreparedPipeline sends one write(2) holding a pipeline: requests the
// server prepares (keys "p...") are started in order, all flushed, then
// finished and answered in order; a request Prepare leaves alone is
// handled only after everything before it is answered; a panicking
// Prepare answers ERROR for its request only.
func TestPreparedPipeline(t *testing.T) {
	log := &eventLog{}
	_, addr := startServerConfig(t, ServerConfig{
		Handler: func(ctx context.Context, req *zppb.Request) *zppb.Response {
			log.add("handle %s", req.GetGet().GetKey())
			return echoHandler(ctx, req)
		},
		Prepare: func(_ context.Context, req *zppb.Request) Prepared {
			key := string(req.GetGet().GetKey())
			switch {
			case key == "ppanic":
				panic("boom")
			case strings.HasPrefix(key, "p"):
				log.add("prepare %s", key)
				return loggedPrepared{log, key}
			}
			return nil
		},
	})

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	keys := []string{"p1", "p2", "h3", "p4", "ppanic", "p5", "h6"}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	for _, k := range keys {
		out, _ := proto.Marshal(getReq(k))
		WriteFrame(bw, out, DefaultMaxFrameSize)
	}
	bw.Flush()
	if _, err := nc.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	for _, k := range keys {
		payload, err := ReadFrame(br, nil, DefaultMaxFrameSize)
		if err != nil {
			t.Fatalf("response for %s: %v", k, err)
		}
		resp := &zppb.Response{}
		if err := proto.Unmarshal(payload, resp); err != nil {
			t.Fatal(err)
		}
		if k == "ppanic" {
			if resp.Code != zppb.Code_ERROR {
				t.Errorf("panicking Prepare: code %v, want ERROR", resp.Code)
			}
			continue
		}
		if got := string(resp.GetGet().GetValue()); got != k {
			t.Fatalf("response %q for request %s: out of order", got, k)
		}
	}
	want := []string{
		"prepare p1", "prepare p2", "flush p1", "flush p2", "finish p1", "finish p2",
		"handle h3",
		"prepare p4", "prepare p5", "flush p4", "flush p5", "finish p4", "finish p5",
		"handle h6",
	}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}
