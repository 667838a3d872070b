// Package target is what zpbench sends operations to: a Zeppelin cluster
// (through lib/client, or as raw pipelined requests to partition masters),
// a Redis server (through go-redis), or zpbench's own no-op server.
package target

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpbench/workload"
)

// Pipelining is how a target keeps several requests in flight on one
// connection.
type Pipelining int

const (
	// Window targets take one operation per Session.Do call and allow
	// concurrent calls on a session: a worker with pipeline depth N keeps N
	// calls going on its connection, each answered as soon as it is done (a
	// sliding window). The Zeppelin client target works this way.
	Window Pipelining = iota
	// Batch targets take N operations per Do call, written together and
	// answered together, as redis-benchmark -P and go-redis pipelines do;
	// so do raw Zeppelin requests and the no-op server, with rpc.Conn.Send.
	// Every operation of a batch is timed from the batch's start to its
	// end.
	Batch
)

// Target is a system under test.
type Target interface {
	// Kind is "zeppelin", "redis" or "noop".
	Kind() string
	// Name describes the target in reports: kind, address, options.
	Name() string
	// Pipelining says how Do takes operations.
	Pipelining() Pipelining
	// NewSession returns one connection's worth of the target; zpbench
	// opens --conns of them and spreads the workers over them.
	NewSession(ctx context.Context) (Session, error)
	// Close releases the target. Sessions are closed first.
	Close() error
}

// Session sends operations over one connection (or, for a smart client,
// one share of its connections).
type Session interface {
	// Do performs ops and stores the outcome of ops[i] in out[i]. Window
	// targets get one operation per call and must allow concurrent calls.
	Do(ctx context.Context, ops []*workload.Op, out []Outcome)
	// Close closes the session's connections.
	Close() error
}

// Outcome is how one operation went.
type Outcome struct {
	// Err is nil when the operation succeeded, a read of a missing key
	// included.
	Err error
	// Miss reports a read that found no value (for MGET and scans: at
	// least one key without a value).
	Miss bool
}

// Error codes of failures that are not a server's answer.
const (
	CodeTimeout   = "TIMEOUT"
	CodeCanceled  = "CANCELED"
	CodeTransport = "TRANSPORT"
	CodeUnknown   = "UNKNOWN_OUTCOME"
	CodeError     = "ERROR"
)

// Code classifies err for the "errors by code" report: the Zeppelin status
// code (MOVE, WAIT, NOT_ENOUGH_REPLICAS ...), the first word of a Redis
// error (ERR, WRONGTYPE, OOM ...), or one of the Code constants.
func Code(err error) string {
	if err == nil {
		return ""
	}
	// A call that ran out of time reports the last failure it retried on
	// as well; the deadline is why it failed.
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, client.ErrUnknownOutcome):
		return CodeUnknown
	}
	var se *status.Error
	if errors.As(err, &se) {
		return se.Code.String()
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		if i := strings.IndexByte(msg, ' '); i > 0 {
			msg = msg[:i]
		}
		return msg
	}
	var ne net.Error
	if rpc.IsTransport(err) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if ne != nil && ne.Timeout() {
			return CodeTimeout
		}
		return CodeTransport
	}
	return CodeError
}

// statusOutcome turns a Zeppelin response into an outcome; NOT_FOUND is a
// miss when the operation is a read.
func statusOutcome(resp *zppb.Response, read bool) Outcome {
	if resp.GetCode() == zppb.Code_NOT_FOUND && read {
		return Outcome{Miss: true}
	}
	return Outcome{Err: status.FromResponse(resp)}
}
