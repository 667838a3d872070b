package redisfront

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Redis 7.0.15's error replies (src/server.c, cluster.c, t_string.c,
// networking.c, db.c), sent as they are.
const (
	errSyntax        = "ERR syntax error"
	errNotInteger    = "ERR value is not an integer or out of range"
	errOverflow      = "ERR increment or decrement would overflow"
	errCrossSlot     = "CROSSSLOT Keys in request don't hash to the same slot"
	errClusterDown   = "CLUSTERDOWN The cluster is down"
	errSlotNotServed = "CLUSTERDOWN Hash slot not served"
	errNoReplicas    = "NOREPLICAS Not enough good replicas to write."
	errWrongPass     = "WRONGPASS invalid username-password pair or user is disabled."
	errNoAuth        = "NOAUTH Authentication required."
	errStringSize    = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	errDBIndex       = "ERR DB index is out of range"
)

func errArity(name string) string {
	return fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(name))
}

func errExpireTime(name string) string {
	return fmt.Sprintf("ERR invalid expire time in '%s' command", strings.ToLower(name))
}

// errUnknownCommand is Redis's reply to a command it does not have, with the
// name as sent and the first arguments quoted (at most 128 bytes of them).
func errUnknownCommand(args [][]byte) string {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		s := a
		if room := 128 - b.Len(); len(s) > room {
			s = s[:room]
		}
		fmt.Fprintf(&b, "'%s' ", s)
	}
	return fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", trunc(args[0], 128), b.String())
}

func errUnknownSubcommand(cmd string, sub []byte) string {
	return fmt.Sprintf("ERR unknown subcommand '%s'. Try %s HELP.", trunc(sub, 128), strings.ToUpper(cmd))
}

func trunc(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// writeStatus writes the Redis error for a failed response of a command on
// a key of slot (-1: no key). Redirections name the RESP address of the
// partition's master as the topology has it.
func (c *conn) writeStatus(code zppb.Code, msg, master string, slot int) {
	c.w.WriteError(c.statusError(code, msg, master, slot))
}

func (c *conn) statusError(code zppb.Code, msg, master string, slot int) string {
	switch code {
	case zppb.Code_MOVE:
		if master == "" {
			return errSlotNotServed
		}
		addr := c.redisAddrOf(master)
		if addr == "" || slot < 0 {
			// The master has no RESP listener: no Redis client can
			// follow it there.
			return errClusterDown
		}
		return fmt.Sprintf("MOVED %d %s", slot, addr)
	case zppb.Code_WAIT:
		return "TRYAGAIN " + msg
	case zppb.Code_CROSS_SLOT:
		return errCrossSlot
	case zppb.Code_NOT_ENOUGH_REPLICAS:
		return errNoReplicas
	case zppb.Code_NOT_INTEGER:
		return errNotInteger
	case zppb.Code_OVERFLOW:
		return errOverflow
	case zppb.Code_VALUE_TOO_LARGE:
		return errStringSize
	case zppb.Code_KEY_TOO_LARGE:
		return "ERR key too large: " + msg
	case zppb.Code_EMPTY_KEY:
		return "ERR empty keys are not allowed"
	case zppb.Code_QUOTA_EXCEEDED:
		return "ERR quota exceeded: " + msg
	case zppb.Code_TIMEOUT:
		return "ERR timeout: " + msg
	case zppb.Code_UNAUTHENTICATED:
		// The table's password was removed after the front checked it.
		return errNoAuth
	}
	if msg == "" {
		msg = code.String()
	}
	return "ERR " + msg
}

// redisAddrOf returns the RESP address of the node at addr, "" when it has
// none or is unknown.
func (c *conn) redisAddrOf(addr string) string {
	for _, n := range c.s.b.Topology().GetNodes() {
		if n.Addr == addr {
			return n.RedisAddr
		}
	}
	return ""
}

// splitHostPort splits a RESP address for CLUSTER replies.
func splitHostPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}
