package server

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// notify sends NOTIFY to nodes in the background, all at once; Close waits
// for it. It is for the few nodes that must act now (a failover's, a
// move's); a change every node should hear of goes through notifyPaced.
func (s *Server) notify(nodes map[string]bool, epoch uint64) {
	for addr := range nodes {
		s.notifyNode(addr, epoch)
	}
}

func (s *Server) notifyNode(addr string, epoch uint64) {
	s.notifyNodeThen(addr, epoch, func() {})
}

// notifyNodeThen NOTIFYs addr in the background and calls done after.
func (s *Server) notifyNodeThen(addr string, epoch uint64, done func()) {
	if addr == "" {
		done()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer done()
		ctx, cancel := context.WithTimeout(s.ctx, 500*time.Millisecond)
		defer cancel()
		s.pool.Call(ctx, addr, &zppb.Request{Cmd: &zppb.Request_Notify{Notify: &zppb.NotifyRequest{Epoch: epoch}}})
	}()
}

// Pacing of notifyPaced: notifyBurst nodes at once, then notifyPerTick
// every notifyTick (2,000 a second: a thousand nodes within half a second,
// the first 64 at once), and never more than notifyInFlight NOTIFYs
// unanswered: the first NOTIFY to a node dials it, and a NOTIFY that times
// out closes its connection.
const (
	notifyBurst    = 64
	notifyPerTick  = 10
	notifyTick     = 5 * time.Millisecond
	notifyInFlight = 64
)

// notifyDelay is how long after the change notifyPaced NOTIFYs the i-th
// node.
func notifyDelay(i int) time.Duration {
	if i < notifyBurst {
		return 0
	}
	return time.Duration((i-notifyBurst)/notifyPerTick+1) * notifyTick
}

// notifyPaced NOTIFYs nodes of a change that may concern every node (a
// table created or dropped, a quota), spread over time: each NOTIFYed node
// PULLs at once, and a thousand PULLs landing together made the leader miss
// its Raft heartbeats. A node whose PING already carried epoch is skipped:
// it has the change. Close stops it.
func (s *Server) notifyPaced(nodes map[string]bool, epoch uint64) {
	addrs := make([]string, 0, len(nodes))
	for addr := range nodes {
		addrs = append(addrs, addr)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		start := time.Now()
		for i, addr := range addrs {
			if d := time.Until(start.Add(notifyDelay(i))); d > 0 {
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(d):
				}
			}
			if s.live.appliedEpoch(addr) >= epoch {
				continue
			}
			select {
			case <-s.ctx.Done():
				return
			case s.notifySlots <- struct{}{}:
			}
			s.notifyNodeThen(addr, epoch, func() { <-s.notifySlots })
		}
	}()
}
