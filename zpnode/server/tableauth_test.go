package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/inproc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	metaserver "github.com/zeppelin-kv/zeppelin/zpmeta/server"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

// Messages of the refusals, as a client meets them.
const (
	noPassword  = `table "p" needs one of its passwords`
	notOneOfIts = `the password given for table "p" is not one of its passwords`
	tooMany     = "too many wrong secrets from this address"
	respNoAuth  = "NOAUTH Authentication required."
	respWrong   = "WRONGPASS invalid username-password pair or user is disabled."
)

// tableAuthCluster is one meta and one node, with an admin token and a
// cluster secret, the node serving RESP on table "p" by default; table
// "p" has the password "right", table "open" none.
type tableAuthCluster struct {
	c         *inproc.Cluster
	admin     *client.Client
	node      string // native address
	redisAddr string
}

func startTableAuthCluster(t *testing.T, ctx context.Context) *tableAuthCluster {
	t.Helper()
	token, secret := []byte("admin-token"), []byte("cluster-secret")
	redisAddr := freeLoopbackAddr(t)
	c := inproc.StartTest(t, inproc.Options{Metas: 1, Nodes: 1,
		MetaConfig: func(_ int, cfg *metaserver.Config) {
			cfg.AdminToken, cfg.ClusterSecret = token, secret
			// The default cost takes seconds per check under -race.
			cfg.TablePasswordCost = tableauth.Cheap
		},
		NodeConfig: func(_ int, cfg *nodeserver.Config) {
			cfg.ClusterSecret, cfg.RedisAddr, cfg.RedisTable, cfg.RedisAllowFlush = secret, redisAddr, "p", true
			cfg.MetricsAddr = "127.0.0.1:0"
			cfg.SlowlogThreshold = time.Nanosecond // every request, for the slow log's keys
		},
	})
	admin, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), AdminToken: token, DefaultTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	tb, err := admin.CreateTable(ctx, client.TableSpec{Name: "p", Partitions: 2, Replicas: 1, Passwords: [][]byte{[]byte("right")}})
	if err != nil {
		t.Fatal(err)
	}
	if !tb.Protected {
		t.Fatalf("created table not protected: %+v", tb)
	}
	if _, err := admin.CreateTable(ctx, client.TableSpec{Name: "open", Partitions: 1, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	return &tableAuthCluster{c: c, admin: admin, node: c.NodeAddrs()[0], redisAddr: redisAddr}
}

// client returns a client presenting password for table p (none: nil).
func (tc *tableAuthCluster) client(t *testing.T, ctx context.Context, password string) *client.Client {
	t.Helper()
	opts := client.Options{MetaAddrs: tc.c.MetaAddrs(), DefaultTimeout: 20 * time.Second}
	if password != "" {
		opts.TablePasswords = map[string][]byte{"p": []byte(password)}
	}
	cl, err := client.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// redis returns a RESP client from the loopback address 127.0.0.ip (so
// that its wrong passwords are rate-limited apart), authenticating with
// AUTH p password (HELLO 3 AUTH with protocol 3) unless password is "".
func (tc *tableAuthCluster) redis(t *testing.T, ip, protocol int, password string) *redis.Client {
	t.Helper()
	opts := &redis.Options{Addr: tc.redisAddr, Protocol: protocol, DisableIdentity: true, MaxRetries: -1, PoolSize: 1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.0.%d", ip))}}
			return d.DialContext(ctx, network, addr)
		}}
	if password != "" {
		opts.Username, opts.Password = "p", password
	}
	r := redis.NewClient(opts)
	t.Cleanup(func() { r.Close() })
	return r
}

// contents reads table p whole, with a right password.
func contents(t *testing.T, ctx context.Context, cl *client.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id := range uint32(2) {
		kvs, _, err := cl.ScanPartition(ctx, "p", id, nil, 100, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			out[string(kv.Key)] = string(kv.Value)
		}
	}
	return out
}

// TestTablePasswords: every data command on a table with a password, on
// both protocols, without a password, with a wrong one and with the right
// one: the first two refused with the exact error, nothing changed, the
// last served; a table without passwords stays open. The verifiers reach
// no plain PULL; a stranger's PULL of them is refused without the cluster
// secret. Starts one meta and one node (a few seconds).
func TestTablePasswords(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := startTableAuthCluster(t, ctx)
	right, none, wrong := tc.client(t, ctx, "right"), tc.client(t, ctx, ""), tc.client(t, ctx, "wrong")
	if err := right.WaitTableWritable(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if err := none.WaitTableWritable(ctx, "p"); !errors.Is(err, status.ErrUnauthenticated) {
		t.Fatalf("waiting for a protected table without its password: %v", err)
	}
	for _, k := range []string{"a", "n", "{h}1"} {
		if err := right.Set(ctx, "p", []byte(k), []byte("5"), 0); err != nil {
			t.Fatal(err)
		}
	}
	before := contents(t, ctx, right)

	// A table without passwords takes every client, a password for
	// another table or none.
	for _, cl := range []*client.Client{none, wrong} {
		if err := cl.Set(ctx, "open", []byte("k"), []byte("v"), 0); err != nil {
			t.Fatalf("SET on the open table: %v", err)
		}
	}

	native := []struct {
		name string
		run  func(cl *client.Client) error
	}{
		{"get", func(cl *client.Client) error { _, err := cl.Get(ctx, "p", []byte("a")); return err }},
		{"set", func(cl *client.Client) error { return cl.Set(ctx, "p", []byte("a"), []byte("x"), 0) }},
		{"setnx", func(cl *client.Client) error {
			_, err := cl.SetWith(ctx, "p", []byte("z"), []byte("x"), client.SetOptions{Condition: client.SetIfAbsent})
			return err
		}},
		{"getset", func(cl *client.Client) error { _, _, err := cl.GetSet(ctx, "p", []byte("a"), []byte("x")); return err }},
		{"getdel", func(cl *client.Client) error { _, err := cl.GetDel(ctx, "p", []byte("a")); return err }},
		{"del", func(cl *client.Client) error { _, err := cl.Del(ctx, "p", []byte("a")); return err }},
		{"exists", func(cl *client.Client) error { _, err := cl.Exists(ctx, "p", []byte("a")); return err }},
		{"ttl", func(cl *client.Client) error { _, err := cl.TTL(ctx, "p", []byte("a")); return err }},
		{"incrby", func(cl *client.Client) error { _, err := cl.IncrBy(ctx, "p", []byte("n"), 1); return err }},
		{"incrbyfloat", func(cl *client.Client) error { _, err := cl.IncrByFloat(ctx, "p", []byte("n"), 1.5); return err }},
		{"append", func(cl *client.Client) error { _, err := cl.Append(ctx, "p", []byte("a"), []byte("x")); return err }},
		{"expire", func(cl *client.Client) error {
			_, err := cl.Expire(ctx, "p", []byte("a"), time.Hour, client.ExpireAlways)
			return err
		}},
		{"persist", func(cl *client.Client) error { _, err := cl.Persist(ctx, "p", []byte("a")); return err }},
		{"mget", func(cl *client.Client) error {
			_, err := cl.MGet(ctx, "p", [][]byte{[]byte("a"), []byte("n")})
			return err
		}},
		{"mset", func(cl *client.Client) error {
			return cl.MSet(ctx, "p", []client.KeyValue{{Key: []byte("a"), Value: []byte("x")}, {Key: []byte("b"), Value: []byte("y")}}, 0)
		}},
		{"writebatch", func(cl *client.Client) error {
			return cl.WriteBatch(ctx, "p", []client.BatchOp{{Key: []byte("{h}1"), Value: []byte("x")}})
		}},
		{"scan", func(cl *client.Client) error { _, _, err := cl.Scan(ctx, "p", []byte("h"), nil, 10); return err }},
		{"scan partition", func(cl *client.Client) error { _, _, err := cl.ScanPartition(ctx, "p", 0, nil, 10, true); return err }},
		{"info of the table", func(cl *client.Client) error {
			_, err := cl.Info(ctx, tc.node, client.InfoStats, "p")
			return err
		}},
		{"flush", func(cl *client.Client) error { return cl.FlushTable(ctx, "p") }},
	}
	for _, op := range native {
		err := op.run(none)
		// Refused before anything ran: no outcome is unknown.
		if !errors.Is(err, status.ErrUnauthenticated) || !strings.Contains(err.Error(), noPassword) || errors.Is(err, client.ErrUnknownOutcome) {
			t.Errorf("native %s without a password: %v, want UNAUTHENTICATED %q", op.name, err, noPassword)
		}
	}

	// RESP, from another address than the native clients: without AUTH
	// (the connection's table is p), and with a wrong password.
	respCmds := [][]any{
		{"GET", "a"}, {"SET", "a", "x"}, {"SETNX", "z", "x"}, {"GETDEL", "a"}, {"DEL", "a"}, {"EXISTS", "a"},
		{"TTL", "a"}, {"INCR", "n"}, {"INCRBYFLOAT", "n", "1.5"}, {"APPEND", "a", "x"}, {"EXPIRE", "a", "100"},
		{"MGET", "{h}1", "{h}2"}, {"MSET", "{h}1", "x", "{h}2", "y"}, {"SCAN", "0"}, {"KEYS", "*"}, {"DBSIZE"},
		{"INFO", "keyspace"}, {"FLUSHDB"}, {"CLUSTER", "COUNTKEYSINSLOT", "0"}, {"PING"}, {"MULTI"},
	}
	for _, proto := range []int{2, 3} {
		noAuth := tc.redis(t, 2, proto, "")
		wrongAuth := tc.redis(t, 3+proto, proto, "wrong")
		for i, args := range respCmds {
			if err := noAuth.Do(ctx, args...).Err(); err == nil || err.Error() != respNoAuth {
				t.Errorf("RESP%d %v without AUTH: %v, want %q", proto, args, err, respNoAuth)
			}
			err := wrongAuth.Do(ctx, args...).Err()
			// The first guesses are checked, then the address must wait.
			if err == nil || (err.Error() != respWrong && (i < 5 || !strings.Contains(err.Error(), respWrong))) {
				t.Errorf("RESP%d %v after a wrong AUTH: %v, want %q", proto, args, err, respWrong)
			}
		}
		// AUTH itself answers WRONGPASS, and leaves the connection as it
		// was.
		if err := noAuth.Do(ctx, "AUTH", "p", "wrong").Err(); err == nil || err.Error() != respWrong {
			t.Errorf("RESP%d AUTH p wrong: %v", proto, err)
		}
	}
	for i, op := range native {
		err := op.run(wrong)
		want := notOneOfIts
		if i >= 5 {
			want = "" // past the burst: either refusal
		}
		if !errors.Is(err, status.ErrUnauthenticated) || (want != "" && !strings.Contains(err.Error(), want)) ||
			(!strings.Contains(err.Error(), notOneOfIts) && !strings.Contains(err.Error(), tooMany)) {
			t.Errorf("native %s with a wrong password: %v, want UNAUTHENTICATED %q", op.name, err, notOneOfIts)
		}
	}
	if after := contents(t, ctx, right); !maps.Equal(after, before) {
		t.Fatalf("refused commands changed the table: %v, was %v", after, before)
	}

	// The right password: every command served, on both protocols.
	for _, op := range native {
		if err := op.run(right); errors.Is(err, status.ErrUnauthenticated) {
			t.Errorf("native %s with the right password: %v", op.name, err)
		}
	}
	for _, proto := range []int{2, 3} {
		ok := tc.redis(t, 1, proto, "right")
		for _, args := range respCmds {
			if args[0] == "MULTI" {
				continue // would leave the connection in a transaction
			}
			if err := ok.Do(ctx, args...).Err(); err != nil && err != redis.Nil {
				t.Errorf("RESP%d %v with the right password: %v", proto, args, err)
			}
		}
	}

	// Verifiers: a plain PULL shows the table protected, without them; a
	// PULL asking for them needs the cluster secret.
	mc, err := rpc.Dial(ctx, tc.c.MetaAddrs()[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	for _, since := range []uint64{0, 1} {
		resp, err := mc.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{SinceEpoch: since, PartitionDeltas: true}}})
		if err != nil || resp.Code != zppb.Code_OK {
			t.Fatalf("PULL: %v %v", resp.GetCode(), err)
		}
		tables := append(resp.GetPull().GetTopology().GetTables(), resp.GetPull().GetPartialTables()...)
		for _, tb := range tables {
			if len(tb.Credentials) > 0 || (tb.Name == "p") != tb.Protected {
				t.Errorf("plain PULL since %d: table %s protected %t with %d credentials", since, tb.Name, tb.Protected, len(tb.Credentials))
			}
		}
	}
	one, err := mc.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{Table: "p"}}})
	if err != nil || len(one.GetPull().GetTopology().GetTables()) != 1 || len(one.GetPull().GetTopology().GetTables()[0].Credentials) > 0 {
		t.Errorf("PULL of table p: %v, %v", one, err)
	}
	resp, err := mc.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{Credentials: true}}})
	if err != nil || resp.Code != zppb.Code_UNAUTHENTICATED || len(resp.GetPull().GetTopology().GetTables()) > 0 {
		t.Errorf("PULL of the verifiers without the cluster secret: %v %q, %v", resp.GetCode(), resp.GetMsg(), err)
	}
	mc.SetClusterToken([]byte("cluster-secret"))
	resp, err = mc.Call(ctx, &zppb.Request{Cmd: &zppb.Request_Pull{Pull: &zppb.PullRequest{Credentials: true}}})
	if err != nil || resp.Code != zppb.Code_OK {
		t.Fatalf("PULL of the verifiers with the cluster secret: %v %v", resp.GetCode(), err)
	}
	for _, tb := range resp.GetPull().GetTopology().GetTables() {
		if tb.Name == "p" && len(tb.Credentials) != 1 {
			t.Errorf("a node's PULL: table p with %d credentials", len(tb.Credentials))
		}
	}
	// The node-wide slow log (no password needed) names no key of p.
	if err := none.Set(ctx, "open", []byte("k2"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := right.Set(ctx, "p", []byte("k2"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	in, err := none.Info(ctx, tc.node, client.InfoSlowlog, "")
	if err != nil {
		t.Fatal(err)
	}
	keyed := map[string]int{}
	for _, e := range in.Slowlog {
		if len(e.Key) > 0 {
			keyed[e.Table]++
		}
	}
	if keyed["p"] > 0 || keyed["open"] == 0 {
		t.Errorf("node-wide slow log: entries with a key by table %v, want none of p, some of open", keyed)
	}

	// Every refusal counted.
	hr, err := http.Get("http://" + tc.c.Node(tc.node).Server().MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	var failures float64
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "zeppelin_node_table_auth_failures_total "); ok {
			failures, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if min := float64(2 * len(native)); failures < min {
		t.Errorf("zeppelin_node_table_auth_failures_total = %v, want at least %v", failures, min)
	}

	lt, _, err := none.ListTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range lt {
		if tb.Protected != (tb.Name == "p") {
			t.Errorf("ListTables: %s protected %t", tb.Name, tb.Protected)
		}
	}
}

// TestTablePasswordRotation: a password added works alongside the old one;
// once the old one is removed it opens nothing, on either protocol, not
// even a RESP connection that authenticated with it before (unlike
// Redis, which keeps such a connection authenticated: a password removed
// because it leaked must stop working at once); the new one keeps
// working. Listing, adding and removing need the admin token. Starts one
// meta and one node (a few seconds).
func TestTablePasswordRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := startTableAuthCluster(t, ctx)
	old, next := tc.client(t, ctx, "right"), tc.client(t, ctx, "new")
	if err := old.WaitTableWritable(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	before := tc.redis(t, 1, 3, "right")
	conn := before.Conn()
	defer conn.Close()
	if err := conn.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// Without the admin token: refused, nothing changed.
	noToken, err := client.New(ctx, client.Options{MetaAddrs: tc.c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer noToken.Close()
	if _, err := noToken.TablePasswords(ctx, "p"); !errors.Is(err, status.ErrUnauthenticated) {
		t.Errorf("list without the admin token: %v", err)
	}
	if _, _, err := noToken.AddTablePassword(ctx, "p", []byte("new")); !errors.Is(err, status.ErrUnauthenticated) {
		t.Errorf("add without the admin token: %v", err)
	}
	if _, _, err := noToken.RemoveTablePassword(ctx, "p", []byte("right"), ""); !errors.Is(err, status.ErrUnauthenticated) {
		t.Errorf("remove without the admin token: %v", err)
	}
	pws, err := tc.admin.TablePasswords(ctx, "p")
	if err != nil || len(pws) != 1 {
		t.Fatalf("passwords: %v, %v", pws, err)
	}
	oldID := pws[0].ID

	newID, pws, err := tc.admin.AddTablePassword(ctx, "p", []byte("new"))
	if err != nil || len(pws) != 2 || newID == oldID {
		t.Fatalf("add: %s %v, %v", newID, pws, err)
	}
	waitUntil(t, ctx, "the node to take the new password", func() bool { return next.Set(ctx, "p", []byte("b"), []byte("2"), 0) == nil })
	if err := old.Set(ctx, "p", []byte("c"), []byte("3"), 0); err != nil {
		t.Fatalf("the old password during the rotation: %v", err)
	}
	if _, _, err := tc.admin.RemoveTablePassword(ctx, "p", []byte("not-one"), ""); status.Code(err) != zppb.Code_NOT_FOUND {
		t.Errorf("removing a password the table does not have: %v", err)
	}
	id, pws, err := tc.admin.RemoveTablePassword(ctx, "p", []byte("right"), "")
	if err != nil || id != oldID || len(pws) != 1 || pws[0].ID != newID {
		t.Fatalf("remove: %s %v, %v", id, pws, err)
	}
	if _, _, err := tc.admin.RemoveTablePassword(ctx, "p", nil, newID); status.Code(err) != zppb.Code_INVALID_ARGUMENT {
		t.Errorf("removing the last password: %v", err)
	}
	// The poll writes a key of its own: its writes before the node drops
	// the password succeed, as they should.
	waitUntil(t, ctx, "the node to drop the old password", func() bool {
		return errors.Is(old.Set(ctx, "p", []byte("poll"), []byte("x"), 0), status.ErrUnauthenticated)
	})
	if err := old.Set(ctx, "p", []byte("d"), []byte("4"), 0); !errors.Is(err, status.ErrUnauthenticated) {
		t.Errorf("a write with the removed password: %v", err)
	}
	if err := next.Set(ctx, "p", []byte("e"), []byte("5"), 0); err != nil {
		t.Fatalf("the new password after the rotation: %v", err)
	}
	if err := conn.Get(ctx, "a").Err(); err == nil || err.Error() != respNoAuth {
		t.Errorf("RESP connection authenticated with the removed password: %v, want %q", err, respNoAuth)
	}
	if err := tc.redis(t, 1, 2, "new").Get(ctx, "a").Err(); err != nil {
		t.Errorf("RESP with the new password: %v", err)
	}
	if v, err := next.Get(ctx, "p", []byte("d")); !errors.Is(err, status.ErrNotFound) {
		t.Errorf("a write refused with the old password applied: %q, %v", v, err)
	}
}

// TestTablePasswordsSavedWithoutVerifiers: a node restarting with a saved
// topology in which a protected table has no verifiers (saved by a release
// that did not ask meta for them) refuses the table's requests, never
// serving them open, until a whole PULL brings the verifiers, without
// waiting for the topology to change. One meta, one node.
func TestTablePasswordsSavedWithoutVerifiers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := startTableAuthCluster(t, ctx)
	right, none := tc.client(t, ctx, "right"), tc.client(t, ctx, "")
	if err := right.WaitTableWritable(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	n := tc.c.Node(tc.node)
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(n.Dir, "topology.pb")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("saved topology (with verifiers) has mode %v, want 0600", fi.Mode().Perm())
	}
	saved := &zppb.Topology{}
	if err := proto.Unmarshal(data, saved); err != nil {
		t.Fatal(err)
	}
	stripped := 0
	for _, tb := range saved.Tables {
		if len(tb.Credentials) > 0 {
			tb.Credentials, tb.Protected = nil, true
			stripped++
		}
	}
	if stripped != 1 {
		t.Fatalf("saved topology: %d tables with verifiers, want 1", stripped)
	}
	if data, err = proto.Marshal(saved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the restarted node to serve the right password", func() bool {
		err := right.Set(ctx, "p", []byte("k"), []byte("v"), 0)
		if err != nil && !errors.Is(err, status.ErrUnauthenticated) {
			t.Logf("waiting: %v", err)
		}
		return err == nil
	})
	if err := none.Set(ctx, "p", []byte("k"), []byte("x"), 0); !errors.Is(err, status.ErrUnauthenticated) {
		t.Fatalf("no password after the restart: %v", err)
	}
}

// waitUntil polls cond until it holds, failing the test when ctx ends.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freeLoopbackAddr is a loopback address with a port nobody listens on
// now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
