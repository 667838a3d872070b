// Package noop is a server that speaks the Zeppelin protocol and does
// nothing: every request is answered OK at once. Benchmarked with the same
// requests as a node, it measures what the framing, the loopback network,
// the Go runtime and the load generator cost on this machine: the ceiling
// no node can pass.
package noop

import (
	"context"
	"log/slog"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// NewServer returns an rpc server answering every request OK. GETs (and
// each key of an MGET, each record of a SCAN) get a value of valueSize
// bytes, so that read responses are as large as a real node's.
func NewServer(valueSize int, log *slog.Logger) (*rpc.Server, error) {
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = 'v'
	}
	return rpc.NewServer(rpc.ServerConfig{Handler: Handler(value), Logger: log})
}

// Handler returns the no-op request handler; value is what reads return.
func Handler(value []byte) rpc.Handler {
	return func(_ context.Context, req *zppb.Request) *zppb.Response {
		switch cmd := req.GetCmd().(type) {
		case *zppb.Request_Get:
			return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: value}}}
		case *zppb.Request_Mget:
			res := make([]*zppb.KeyResult, len(cmd.Mget.GetKeys()))
			for i := range res {
				res[i] = &zppb.KeyResult{Value: value}
			}
			return &zppb.Response{Result: &zppb.Response_Mget{Mget: &zppb.MGetResponse{Results: res}}}
		case *zppb.Request_Mset:
			res := make([]*zppb.KeyResult, len(cmd.Mset.GetKvs()))
			for i := range res {
				res[i] = &zppb.KeyResult{}
			}
			return &zppb.Response{Result: &zppb.Response_Mset{Mset: &zppb.MSetResponse{Results: res}}}
		case *zppb.Request_Incrby:
			return &zppb.Response{Result: &zppb.Response_Incrby{Incrby: &zppb.IncrByResponse{Value: cmd.Incrby.GetDelta()}}}
		case *zppb.Request_Scan:
			kvs := make([]*zppb.KeyValue, cmd.Scan.GetCount())
			for i := range kvs {
				kvs[i] = &zppb.KeyValue{Value: value}
			}
			return &zppb.Response{Result: &zppb.Response_Scan{Scan: &zppb.ScanResponse{Kvs: kvs}}}
		}
		return &zppb.Response{}
	}
}
