package rpctest

import (
	"context"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestServe(t *testing.T) {
	addr := Serve(t, func(_ context.Context, req *zppb.Request) *zppb.Response {
		return &zppb.Response{Msg: "got " + string(req.GetGet().GetKey())}
	})
	pool := rpc.NewPool(rpc.PoolOptions{ConnsPerAddr: 1})
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := pool.Call(ctx, addr, &zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Key: []byte("k")}}})
	if err != nil || resp.GetMsg() != "got k" {
		t.Fatalf("%v, %v", resp, err)
	}
}
