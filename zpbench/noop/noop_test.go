package noop

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestAnswers(t *testing.T) {
	srv, err := NewServer(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Dial(ctx, ln.Addr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	tests := []struct {
		name  string
		req   *zppb.Request
		check func(*zppb.Response) bool
	}{
		{"set", &zppb.Request{Cmd: &zppb.Request_Set{Set: &zppb.SetRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}}},
			func(r *zppb.Response) bool { return true }},
		{"get", &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: "t", Key: []byte("k")}}},
			func(r *zppb.Response) bool { return string(r.GetGet().GetValue()) == "vvv" }},
		{"mget", &zppb.Request{Cmd: &zppb.Request_Mget{Mget: &zppb.MGetRequest{Table: "t", Keys: [][]byte{[]byte("a"), []byte("b")}}}},
			func(r *zppb.Response) bool { return len(r.GetMget().GetResults()) == 2 }},
		{"mset", &zppb.Request{Cmd: &zppb.Request_Mset{Mset: &zppb.MSetRequest{Table: "t", Kvs: []*zppb.KeyValue{{Key: []byte("a")}}}}},
			func(r *zppb.Response) bool { return len(r.GetMset().GetResults()) == 1 }},
		{"scan", &zppb.Request{Cmd: &zppb.Request_Scan{Scan: &zppb.ScanRequest{Table: "t", Hashtag: []byte("h"), Count: 5}}},
			func(r *zppb.Response) bool { return len(r.GetScan().GetKvs()) == 5 }},
		{"info", &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{}}},
			func(r *zppb.Response) bool { return true }},
	}
	for _, tt := range tests {
		resp, err := c.Call(ctx, tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if resp.GetCode() != zppb.Code_OK || !tt.check(resp) {
			t.Errorf("%s: unexpected answer %v", tt.name, resp)
		}
	}
}
