// Package accept is the accept loop every server of the project runs on
// its listeners (the native protocol's and RESP's).
package accept

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Loop accepts connections on ln and hands each to handle until ln fails or
// ctx ends; it returns nil once ctx has ended. handle returns false when the
// server no longer takes connections (it is closing): the connection is
// closed and Loop returns nil.
//
// A temporary failure (out of file descriptors, say) does not end the loop:
// it is retried after a pause that doubles up to a second, as net/http
// does, so a burst of connections cannot kill a server's listener.
func Loop(ctx context.Context, ln net.Listener, log *slog.Logger, handle func(net.Conn) bool) error {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				log.Warn("accept failed; retrying", "addr", ln.Addr().String(), "err", err, "backoff", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		if !handle(nc) {
			nc.Close()
			return nil
		}
	}
}
