package redisfront

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpnode/resp"
)

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

func cmdPing(c *conn, args [][]byte) entry {
	if len(args) > 2 {
		return fail(errArity("ping"))
	}
	return local(func(c *conn) {
		if len(args) == 2 {
			c.w.WriteBulk(args[1])
		} else {
			c.w.WriteSimpleString("PONG")
		}
	})
}

func cmdEcho(c *conn, args [][]byte) entry {
	return local(func(c *conn) { c.w.WriteBulk(args[1]) })
}

// selectTable makes the connection work on table once the password opens
// it; a table that does not exist fails as a wrong password does. A
// refusal leaves the connection as it was (Redis keeps the user of an
// earlier AUTH).
func (c *conn) selectTable(table string, password []byte) string {
	if !c.tableExists(table) || c.s.cfg.Auth.Authenticate(c.base, table, password) != nil {
		return errWrongPass
	}
	c.mu.Lock()
	c.table, c.password = table, password
	c.mu.Unlock()
	return ""
}

func (c *conn) tableExists(table string) bool {
	for _, tb := range c.s.b.Topology().GetTables() {
		if tb.Name == table {
			return true
		}
	}
	return false
}

// cmdAuth is AUTH <table> <password>: the ACL username is the table.
func cmdAuth(c *conn, args [][]byte) entry {
	switch len(args) {
	case 2:
		return fail("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	case 3:
		table, password := string(args[1]), clone(args[2])
		return local(func(c *conn) {
			if msg := c.selectTable(table, password); msg != "" {
				c.w.WriteError(msg)
				return
			}
			c.w.WriteSimpleString("OK")
		})
	}
	return fail(errSyntax)
}

// cmdHello is HELLO [2|3 [AUTH table password] [SETNAME name]].
func cmdHello(c *conn, args [][]byte) entry {
	ver := 0
	next := 1
	if len(args) >= 2 {
		n, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			return fail("ERR Protocol version is not an integer or out of range")
		}
		if n < 2 || n > 3 {
			return fail("NOPROTO unsupported protocol version")
		}
		ver, next = int(n), 2
	}
	var table, name string
	var password []byte
	auth, setname := false, false
	for j := next; j < len(args); j++ {
		more := len(args) - 1 - j
		opt := string(args[j])
		switch {
		case strings.EqualFold(opt, "AUTH") && more >= 2:
			auth, table, password = true, string(args[j+1]), clone(args[j+2])
			j += 2
		case strings.EqualFold(opt, "SETNAME") && more >= 1:
			setname, name = true, string(args[j+1])
			if msg := checkName(name); msg != "" {
				return fail(msg)
			}
			j++
		default:
			return fail(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", opt))
		}
	}
	return local(func(c *conn) {
		if auth {
			if msg := c.selectTable(table, password); msg != "" {
				c.w.WriteError(msg)
				return
			}
		}
		if setname {
			c.setName(name)
		}
		if ver != 0 {
			c.setProto(ver)
		}
		c.w.WriteMapLen(7)
		c.w.WriteBulkString("server")
		c.w.WriteBulkString("redis")
		c.w.WriteBulkString("version")
		c.w.WriteBulkString(Version)
		c.w.WriteBulkString("proto")
		c.w.WriteInt(int64(c.w.Protocol()))
		c.w.WriteBulkString("id")
		c.w.WriteInt(c.id)
		c.w.WriteBulkString("mode")
		c.w.WriteBulkString("cluster")
		c.w.WriteBulkString("role")
		c.w.WriteBulkString("master")
		c.w.WriteBulkString("modules")
		c.w.WriteArrayLen(0)
	})
}

// cmdSelect accepts database 0 only, as Redis Cluster does.
func cmdSelect(c *conn, args [][]byte) entry {
	n, err := strconv.ParseInt(string(args[1]), 10, 64)
	if err != nil {
		return fail(errNotInteger)
	}
	if n != 0 {
		return fail("ERR SELECT is not allowed in cluster mode")
	}
	return ok()
}

func cmdQuit(c *conn, args [][]byte) entry {
	return local(func(c *conn) {
		c.w.WriteSimpleString("OK")
		c.quit = true
	})
}

// cmdReset puts the connection back as it was accepted.
func cmdReset(c *conn, args [][]byte) entry {
	return local(func(c *conn) {
		c.mu.Lock()
		c.table, c.password, c.name = c.s.cfg.Table, nil, ""
		c.mu.Unlock()
		c.lastWriteKey, c.lastWriteTable = nil, ""
		c.tx = nil
		c.setReadonly(false)
		c.setProto(resp.RESP2)
		c.w.WriteSimpleString("RESET")
	})
}

func cmdTime(c *conn, args [][]byte) entry {
	return local(func(c *conn) {
		now := time.Now()
		c.w.WriteArrayLen(2)
		c.w.WriteBulkString(strconv.FormatInt(now.Unix(), 10))
		c.w.WriteBulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
	})
}

// cmdReadonly is READONLY and READWRITE. After READONLY, reads of a
// partition this node holds as a slave are served from its data, which may
// lag the master (see docs/redis.md, READONLY); writes still answer MOVED.
func cmdReadonly(c *conn, args [][]byte) entry {
	on := strings.EqualFold(string(args[0]), "readonly")
	return local(func(c *conn) {
		c.setReadonly(on)
		c.w.WriteSimpleString("OK")
	})
}

// cmdAsking is accepted: no slot is ever half migrated between nodes, so
// no ASK redirection is ever sent.
func cmdAsking(c *conn, args [][]byte) entry { return ok() }

// checkName refuses names Redis refuses: spaces, newlines, special
// characters.
func checkName(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] < '!' || name[i] > '~' {
			return "ERR Client names cannot contain spaces, newlines or special characters."
		}
	}
	return ""
}

func (c *conn) setName(name string) {
	c.mu.Lock()
	c.name = name
	c.mu.Unlock()
}

// cmdClient is CLIENT ID, SETNAME, GETNAME, SETINFO, INFO, LIST and KILL;
// LIST and KILL see the connections of the caller's table only.
func cmdClient(c *conn, args [][]byte) entry {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "id":
		return local(func(c *conn) { c.w.WriteInt(c.id) })
	case "setname":
		if len(args) != 3 {
			return fail(errArity("client|setname"))
		}
		name := string(args[2])
		if msg := checkName(name); msg != "" {
			return fail(msg)
		}
		return local(func(c *conn) { c.setName(name); c.w.WriteSimpleString("OK") })
	case "getname":
		return local(func(c *conn) {
			c.mu.Lock()
			name := c.name
			c.mu.Unlock()
			if name == "" {
				c.w.WriteNull()
			} else {
				c.w.WriteBulkString(name)
			}
		})
	case "setinfo":
		if len(args) != 4 {
			return fail(errArity("client|setinfo"))
		}
		attr := strings.ToLower(string(args[2]))
		if attr != "lib-name" && attr != "lib-ver" {
			return fail(fmt.Sprintf("ERR Unrecognized option '%s'", args[2]))
		}
		return ok()
	case "info":
		return local(func(c *conn) { c.w.WriteVerbatim("txt", []byte(c.describe())) })
	case "list":
		return local(func(c *conn) {
			var b strings.Builder
			for _, o := range c.s.clients() {
				if o.getTable() == c.getTable() {
					b.WriteString(o.describe())
				}
			}
			c.w.WriteVerbatim("txt", []byte(b.String()))
		})
	case "kill":
		return clientKill(c, args)
	case "no-evict", "no-touch", "reply":
		return ok()
	}
	return fail(errUnknownSubcommand("client", args[1]))
}

// clientKill is CLIENT KILL addr, or CLIENT KILL [ID id] [ADDR addr]
// [SKIPME yes|no], within the caller's table.
func clientKill(c *conn, args [][]byte) entry {
	if len(args) == 3 {
		addr := string(args[2])
		return local(func(c *conn) {
			if c.kill(func(o *conn) bool { return o.nc.RemoteAddr().String() == addr }, false) == 0 {
				c.w.WriteError("ERR No such client")
				return
			}
			c.w.WriteSimpleString("OK")
		})
	}
	if len(args)%2 != 0 {
		return fail(errSyntax)
	}
	var id int64 = -1
	addr := ""
	skipme := true
	for i := 2; i < len(args); i += 2 {
		v := string(args[i+1])
		switch strings.ToLower(string(args[i])) {
		case "id":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return fail("ERR client-id should be greater than 0")
			}
			id = n
		case "addr":
			addr = v
		case "skipme":
			switch strings.ToLower(v) {
			case "yes":
				skipme = true
			case "no":
				skipme = false
			default:
				return fail(errSyntax)
			}
		default:
			return fail(errSyntax)
		}
	}
	return local(func(c *conn) {
		n := c.kill(func(o *conn) bool {
			return (id < 0 || o.id == id) && (addr == "" || o.nc.RemoteAddr().String() == addr)
		}, skipme)
		c.w.WriteInt(int64(n))
	})
}

// kill closes the connections of the caller's table that match; the
// caller's own is closed after its reply.
func (c *conn) kill(match func(o *conn) bool, skipme bool) int {
	n := 0
	for _, o := range c.s.clients() {
		if o.getTable() != c.getTable() || !match(o) {
			continue
		}
		if o == c {
			if skipme {
				continue
			}
			c.quit = true
		} else {
			o.nc.Close()
		}
		n++
	}
	return n
}

// describe is the connection's CLIENT LIST line.
func (c *conn) describe() string {
	c.mu.Lock()
	name, table, cmd, proto, readonly := c.name, c.table, c.lastCmd, c.proto, c.readonly
	c.mu.Unlock()
	flags := "N"
	if readonly {
		flags = "r"
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=0 flags=%s db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%d cmd=%s user=%s redir=-1 resp=%d\n",
		c.id, c.nc.RemoteAddr(), c.nc.LocalAddr(), name, int64(time.Since(c.created).Seconds()), flags, c.inBuf.Load(), cmd, table, proto)
}

func (c *conn) setProto(v int) {
	c.w.SetProtocol(v)
	c.mu.Lock()
	c.proto = v
	c.mu.Unlock()
}

func (c *conn) setReadonly(on bool) {
	c.mu.Lock()
	c.readonly = on
	c.mu.Unlock()
}
