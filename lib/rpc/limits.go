package rpc

import (
	"flag"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/accept"
)

// Limits bound what peers can hold of a server: connections in all and
// per remote address, the time to read one request frame once it has
// begun (slowloris), and the time a write of answers may make no
// progress (a peer that does not read). zpnode (both its protocols) and
// zpmeta take them alike. A zero field means its default; a negative one
// no bound.
type Limits struct {
	MaxConns        int
	MaxConnsPerAddr int
	FrameTimeout    time.Duration
	WriteTimeout    time.Duration
}

// Defaults of Limits. Connections per address are not bounded by default:
// a peer node holds one per slave replica it has of this node's partitions.
const (
	DefaultMaxConns     = 65536
	DefaultFrameTimeout = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

// Resolved returns l with zero fields set to their defaults and negative
// ones to 0, no bound.
func (l Limits) Resolved() Limits {
	def := func(v, d int64) int64 {
		switch {
		case v == 0:
			return d
		case v < 0:
			return 0
		}
		return v
	}
	return Limits{
		MaxConns:        int(def(int64(l.MaxConns), DefaultMaxConns)),
		MaxConnsPerAddr: int(max(l.MaxConnsPerAddr, 0)),
		FrameTimeout:    time.Duration(def(int64(l.FrameTimeout), int64(DefaultFrameTimeout))),
		WriteTimeout:    time.Duration(def(int64(l.WriteTimeout), int64(DefaultWriteTimeout))),
	}
}

// Gate returns a connection gate for l's connection bounds, to share
// among a server's listeners.
func (l Limits) Gate() *accept.Gate {
	r := l.Resolved()
	return accept.NewGate(accept.Limits{MaxConns: r.MaxConns, MaxConnsPerAddr: r.MaxConnsPerAddr})
}

// RegisterFlags defines the flags that set l.
func (l *Limits) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&l.MaxConns, "max-conns", DefaultMaxConns, "connections held at once, all clients together (-1: no bound)")
	fs.IntVar(&l.MaxConnsPerAddr, "max-conns-per-addr", 0, "connections held at once from one IP address (0: no bound)")
	fs.DurationVar(&l.FrameTimeout, "frame-timeout", DefaultFrameTimeout, "a request must arrive whole within this once it has begun (slowloris; -1: no bound)")
	fs.DurationVar(&l.WriteTimeout, "write-timeout", DefaultWriteTimeout, "close a connection whose answers make no progress this long (a client that does not read; -1: no bound)")
}
