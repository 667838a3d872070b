// Package protect holds the rules of protected mode: which addresses are
// loopback only, and the refusal of a daemon that would listen beyond
// loopback with nothing guarding it (Redis's protected mode).
package protect

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrUnprotected is wrapped by Check's refusal.
var ErrUnprotected = errors.New("protected mode")

// Loopback reports whether addr (host:port, or a host) reaches only this
// machine: a loopback IP or "localhost". An empty host, 0.0.0.0 and ::
// listen on every interface, and another name may resolve anywhere.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Check refuses a daemon about to listen on addrs beyond loopback while
// none of its guards is on, unless insecure (the operator's --insecure):
// guards names each guard and whether it is set, in the order the error
// suggests them.
func Check(addrs []string, guards []Guard, insecure bool) error {
	if insecure {
		return nil
	}
	var exposed []string
	for _, a := range addrs {
		if a != "" && !Loopback(a) {
			exposed = append(exposed, a)
		}
	}
	if len(exposed) == 0 {
		return nil
	}
	var flags []string
	for _, g := range guards {
		if g.On {
			return nil
		}
		flags = append(flags, g.Flag)
	}
	return fmt.Errorf("%w: listening on %s beyond loopback with nothing guarding it: set %s, or --insecure to run unprotected on a trusted network (docs/security.md)",
		ErrUnprotected, strings.Join(exposed, ", "), strings.Join(flags, " or "))
}

// Guard is one setting that protects a daemon.
type Guard struct {
	Flag string // e.g. "--admin-token-file"
	On   bool
}
