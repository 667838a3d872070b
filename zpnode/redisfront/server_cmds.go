package redisfront

import (
	"fmt"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// cmdCommand is COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND LIST and
// COMMAND DOCS, describing the commands of this front in Redis 7's
// ten-field form (what go-redis's ClusterClient reads at start).
func cmdCommand(c *conn, args [][]byte) entry {
	if len(args) == 1 {
		return local(func(c *conn) {
			names := sortedCommands()
			c.w.WriteArrayLen(len(names))
			for _, n := range names {
				c.writeCommandInfo(commands[n])
			}
		})
	}
	switch strings.ToLower(string(args[1])) {
	case "count":
		return local(func(c *conn) { c.w.WriteInt(int64(len(commands))) })
	case "list":
		return local(func(c *conn) {
			names := sortedCommands()
			c.w.WriteArrayLen(len(names))
			for _, n := range names {
				c.w.WriteBulkString(n)
			}
		})
	case "info":
		return local(func(c *conn) {
			c.w.WriteArrayLen(len(args) - 2)
			for _, a := range args[2:] {
				if cmd := commands[strings.ToLower(string(a))]; cmd != nil {
					c.writeCommandInfo(cmd)
				} else {
					c.w.WriteNullArray()
				}
			}
		})
	case "docs":
		// No documentation is served: redis-cli then has no hints.
		return local(func(c *conn) { c.w.WriteMapLen(0) })
	}
	return fail(errUnknownSubcommand("command", args[1]))
}

func sortedCommands() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// writeCommandInfo writes name, arity, flags, first key, last key, step,
// ACL categories, tips, key specs and subcommands.
func (c *conn) writeCommandInfo(cmd *command) {
	c.w.WriteArrayLen(10)
	c.w.WriteBulkString(cmd.name)
	c.w.WriteInt(int64(cmd.arity))
	c.w.WriteSetLen(len(cmd.flags))
	for _, f := range cmd.flags {
		c.w.WriteSimpleString(f)
	}
	c.w.WriteInt(int64(cmd.first))
	c.w.WriteInt(int64(cmd.last))
	c.w.WriteInt(int64(cmd.step))
	c.w.WriteSetLen(0)
	c.w.WriteArrayLen(0)
	c.w.WriteArrayLen(0)
	c.w.WriteArrayLen(0)
}

// configs are the parameters CONFIG GET answers: what clients and tools
// ask (redis-benchmark reads save and appendonly) with the values that
// describe this server.
func (s *Server) configs() map[string]string {
	timeout := strconv.FormatInt(int64(s.cfg.IdleTimeout/time.Second), 10)
	return map[string]string{
		"save":                          "",
		"appendonly":                    "no",
		"databases":                     "1",
		"maxmemory":                     "0",
		"maxmemory-policy":              "noeviction",
		"timeout":                       timeout,
		"cluster-enabled":               "yes",
		"cluster-require-full-coverage": "yes",
		"cluster-node-timeout":          "15000",
		"cluster-allow-reads-when-down": "no",
		"proto-max-bulk-len":            strconv.Itoa(s.cfg.MaxValueSize),
		"client-query-buffer-limit":     strconv.Itoa(s.limits().MaxQueryBuffer),
		"min-replicas-to-write":         "0",
		"appendfsync":                   "everysec",
	}
}

// cmdConfig is CONFIG GET (glob patterns, as Redis) and CONFIG RESETSTAT;
// nothing is settable.
func cmdConfig(c *conn, args [][]byte) entry {
	switch strings.ToLower(string(args[1])) {
	case "get":
		if len(args) < 3 {
			return fail(errArity("config|get"))
		}
		return local(func(c *conn) {
			all := c.s.configs()
			var keys []string
			for k := range all {
				for _, pat := range args[2:] {
					if m, _ := path.Match(strings.ToLower(string(pat)), k); m {
						keys = append(keys, k)
						break
					}
				}
			}
			slices.Sort(keys)
			c.w.WriteMapLen(len(keys))
			for _, k := range keys {
				c.w.WriteBulkString(k)
				c.w.WriteBulkString(all[k])
			}
		})
	case "set":
		if len(args) < 4 {
			return fail(errArity("config|set"))
		}
		return fail(fmt.Sprintf("ERR Unknown option or number of arguments for CONFIG SET - '%s'", args[2]))
	case "resetstat":
		return ok()
	}
	return fail(errUnknownSubcommand("config", args[1]))
}

// cmdInfo is INFO [section ...]: server, clients, memory, stats,
// replication, keyspace and cluster, with the field names tools parse.
func cmdInfo(c *conn, args [][]byte) entry {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	// Replication and stats come from the node's INFO request, the same
	// command the native front answers.
	var reqs []*zppb.Request
	if all || want["stats"] {
		reqs = append(reqs, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{Section: zppb.InfoSection_INFO_STATS, Table: c.table}}})
	}
	return entry{reqs: reqs, reply: func(c *conn, rs []*zppb.Response) {
		var b strings.Builder
		section := func(name string, lines ...string) {
			if !all && !want[strings.ToLower(name)] {
				return
			}
			if b.Len() > 0 {
				b.WriteString("\r\n")
			}
			b.WriteString("# " + name + "\r\n")
			for _, l := range lines {
				b.WriteString(l + "\r\n")
			}
		}
		_, port := splitHostPort(c.nc.LocalAddr().String())
		uptime := int64(time.Since(c.s.started).Seconds())
		section("Server",
			"redis_version:"+Version,
			"redis_mode:cluster",
			"os:"+runtime.GOOS+" "+runtime.GOARCH,
			"arch_bits:64",
			fmt.Sprintf("process_id:%d", os.Getpid()),
			"run_id:"+nodeID(c.s.b.Addr()),
			fmt.Sprintf("tcp_port:%d", port),
			fmt.Sprintf("uptime_in_seconds:%d", uptime),
			fmt.Sprintf("uptime_in_days:%d", uptime/86400),
			"zeppelin_version:"+buildinfo.Version,
			"zeppelin_node:"+c.s.b.Addr(),
			"zeppelin_table:"+c.table,
		)
		section("Clients", fmt.Sprintf("connected_clients:%d", len(c.s.clients())), "blocked_clients:0")
		var ms runtime.MemStats
		if all || want["memory"] {
			runtime.ReadMemStats(&ms)
		}
		section("Memory", fmt.Sprintf("used_memory:%d", ms.HeapAlloc), "maxmemory:0", "maxmemory_policy:noeviction")
		var ops uint64
		var qps float64
		if len(rs) > 0 {
			for _, ts := range rs[0].GetInfo().GetStats() {
				ops += ts.Ops
				qps += ts.Qps
			}
		}
		section("Stats",
			fmt.Sprintf("total_connections_received:%d", c.s.accepted.Load()),
			fmt.Sprintf("total_commands_processed:%d", c.s.commands.Load()),
			fmt.Sprintf("instantaneous_ops_per_sec:%d", int64(qps)),
			fmt.Sprintf("zeppelin_table_ops:%d", ops),
		)
		section("Replication", "role:master", "connected_slaves:0")
		section("Cluster", "cluster_enabled:1")
		if all || want["keyspace"] {
			n, _ := c.s.b.DBSize(c.table)
			section("Keyspace", fmt.Sprintf("db0:keys=%d,expires=0,avg_ttl=0", n))
		}
		c.w.WriteVerbatim("txt", []byte(b.String()))
	}}
}
