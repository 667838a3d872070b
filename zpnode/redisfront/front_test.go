package redisfront

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/accept"
	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// fakeBackend records what the front asks of the node, and answers from a
// map.
type fakeBackend struct {
	mu     sync.Mutex
	events []string
	data   map[string]string
	// status, when set, answers every data request with it.
	status *zppb.Response
	topo   *zppb.Topology
}

func newFake() *fakeBackend {
	return &fakeBackend{data: map[string]string{}, topo: &zppb.Topology{
		Epoch: 7,
		Nodes: []*zppb.Node{
			{Addr: "10.0.0.1:9231", RedisAddr: "10.0.0.1:9241", State: zppb.NodeState_UP},
			{Addr: "10.0.0.2:9231", RedisAddr: "10.0.0.2:9241", State: zppb.NodeState_UP},
		},
		Tables: []*zppb.Table{{Name: "default", PartitionCount: 2, Partitions: []*zppb.Partition{
			{Id: 0, Master: "10.0.0.1:9231", Slaves: []string{"10.0.0.2:9231"}},
			{Id: 1, Master: "10.0.0.2:9231", Slaves: []string{"10.0.0.1:9231"}},
		}}},
	}}
}

func (f *fakeBackend) log(format string, args ...any) {
	f.mu.Lock()
	f.events = append(f.events, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *fakeBackend) takeEvents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := f.events
	f.events = nil
	return ev
}

type fakePending struct {
	f      *fakeBackend
	req    *zppb.Request
	name   string
	queued bool
}

func (f *fakeBackend) Start(ctx context.Context, req *zppb.Request) Pending {
	p := &fakePending{f: f, req: req}
	switch c := req.Cmd.(type) {
	case *zppb.Request_Set:
		p.name, p.queued = "set "+string(c.Set.Key), true
	case *zppb.Request_Get:
		p.name = "get " + string(c.Get.Key)
	default:
		p.name = fmt.Sprintf("%T", req.Cmd)
	}
	f.log("start %s", p.name)
	return p
}

func (p *fakePending) Queued() bool { return p.queued }
func (p *fakePending) Flush()       { p.f.log("flush %s", p.name) }
func (p *fakePending) Finish() *zppb.Response {
	f := p.f
	f.log("finish %s", p.name)
	if f.status != nil {
		return f.status
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answer(p.req)
}

// answer runs req on the map; the caller holds f.mu.
func (f *fakeBackend) answer(req *zppb.Request) *zppb.Response {
	switch c := req.Cmd.(type) {
	case *zppb.Request_Multi:
		out := &zppb.MultiResponse{}
		for _, sub := range c.Multi.Cmds {
			out.Results = append(out.Results, f.answer(sub))
		}
		return &zppb.Response{Result: &zppb.Response_Multi{Multi: out}}
	case *zppb.Request_Incrby:
		return &zppb.Response{Code: zppb.Code_NOT_INTEGER}
	case *zppb.Request_Set:
		f.data[string(c.Set.Key)] = string(c.Set.Value)
		return &zppb.Response{Result: &zppb.Response_Set{Set: &zppb.SetResponse{Applied: true}}}
	case *zppb.Request_Get:
		v, ok := f.data[string(c.Get.Key)]
		if !ok {
			return &zppb.Response{Code: zppb.Code_NOT_FOUND}
		}
		return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: []byte(v)}}}
	}
	return &zppb.Response{}
}

func (f *fakeBackend) Topology() *zppb.Topology { return f.topo }
func (f *fakeBackend) SlotOwner(table string, slot uint16) *zppb.Partition {
	for _, tb := range f.topo.Tables {
		if m, err := topo.SlotMap(tb); err == nil && tb.Name == table {
			return tb.Partitions[m.PartitionOfSlot(slot)]
		}
	}
	return nil
}
func (f *fakeBackend) Addr() string { return "10.0.0.1:9231" }
func (f *fakeBackend) DBSize(string) (int64, error) {
	return 0, nil
}
func (f *fakeBackend) WaitReplicas(context.Context, string, []byte, int) (int, error) {
	return 0, nil
}
func (f *fakeBackend) KeysInSlot(string, uint16, int) ([][]byte, int, error) {
	return nil, 0, nil
}

// startFront serves a front of f on a loopback port.
func startFront(t *testing.T, f *fakeBackend, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg, f)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s, ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc, bufio.NewReader(nc)
}

func readLines(t *testing.T, br *bufio.Reader, n int) []string {
	t.Helper()
	var out []string
	for range n {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", out, err)
		}
		out = append(out, strings.TrimRight(line, "\r\n"))
	}
	return out
}

// TestPipelineGroupsQueuedWrites checks the pipeline contract: queued SETs
// are started together and flushed before any finishes; a command that is
// not queued (GET) is a barrier for the commands after it.
func TestPipelineGroupsQueuedWrites(t *testing.T) {
	f := newFake()
	_, addr := startFront(t, f, Config{})
	nc, br := dial(t, addr)
	// One write, so the server sees the whole pipeline buffered.
	io.WriteString(nc, "SET a 1\r\nSET b 2\r\nGET a\r\nSET c 3\r\nGET c\r\n")
	got := readLines(t, br, 7)
	if want := "+OK +OK $1 1 +OK $1 3"; strings.Join(got, " ") != want {
		t.Fatalf("replies %q, want %q", got, want)
	}
	want := []string{
		"start set a", "start set b", "start get a",
		"flush set a", "flush set b", "flush get a",
		"finish set a", "finish set b", "finish get a",
		"start set c", "start get c",
		"flush set c", "flush get c",
		"finish set c", "finish get c",
	}
	if ev := f.takeEvents(); strings.Join(ev, ", ") != strings.Join(want, ", ") {
		t.Fatalf("events\n%s\nwant\n%s", strings.Join(ev, "\n"), strings.Join(want, "\n"))
	}
}

// TestStatusErrors maps node status codes to Redis's errors.
func TestStatusErrors(t *testing.T) {
	slot := int(keyspace.Slot([]byte("k")))
	for _, tc := range []struct {
		resp *zppb.Response
		want string
	}{
		{&zppb.Response{Code: zppb.Code_MOVE, Master: "10.0.0.2:9231"}, fmt.Sprintf("-MOVED %d 10.0.0.2:9241", slot)},
		{&zppb.Response{Code: zppb.Code_MOVE}, "-CLUSTERDOWN Hash slot not served"},
		{&zppb.Response{Code: zppb.Code_MOVE, Master: "10.0.0.9:9231"}, "-CLUSTERDOWN The cluster is down"},
		{&zppb.Response{Code: zppb.Code_WAIT, Msg: "partition default/0 is STUCK for a move"}, "-TRYAGAIN partition default/0 is STUCK for a move"},
		{&zppb.Response{Code: zppb.Code_NOT_ENOUGH_REPLICAS, Msg: "x"}, "-NOREPLICAS Not enough good replicas to write."},
		{&zppb.Response{Code: zppb.Code_CROSS_SLOT}, "-CROSSSLOT Keys in request don't hash to the same slot"},
		{&zppb.Response{Code: zppb.Code_NOT_INTEGER}, "-ERR value is not an integer or out of range"},
		{&zppb.Response{Code: zppb.Code_OVERFLOW}, "-ERR increment or decrement would overflow"},
		{&zppb.Response{Code: zppb.Code_VALUE_TOO_LARGE}, "-ERR string exceeds maximum allowed size (proto-max-bulk-len)"},
		{&zppb.Response{Code: zppb.Code_QUOTA_EXCEEDED, Msg: `table "default" is over its quota on this node`}, `-ERR quota exceeded: table "default" is over its quota on this node`},
	} {
		f := newFake()
		f.status = tc.resp
		_, addr := startFront(t, f, Config{})
		nc, br := dial(t, addr)
		io.WriteString(nc, "GET k\r\n")
		if got := readLines(t, br, 1)[0]; got != tc.want {
			t.Errorf("%v: %q, want %q", tc.resp.Code, got, tc.want)
		}
	}
}

// TestLocalCommands covers the replies the front gives itself.
func TestLocalCommands(t *testing.T) {
	f := newFake()
	_, addr := startFront(t, f, Config{})
	for _, tc := range []struct{ in, want string }{
		{"PING", "+PONG"},
		{"ECHO hi", "$2 hi"},
		{"SELECT 0", "+OK"},
		{"SELECT 3", "-ERR SELECT is not allowed in cluster mode"},
		{"AUTH pw", "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
		{"AUTH nosuch pw", "-WRONGPASS invalid username-password pair or user is disabled."},
		{"AUTH default pw", "+OK"},
		{"CLUSTER KEYSLOT foo", ":12182"},
		{"CLUSTER MYID", "$40 " + nodeID("10.0.0.1:9231")},
		{"CLUSTER NOPE", "-ERR unknown subcommand 'NOPE'. Try CLUSTER HELP."},
		{"FOO bar baz", "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' "},
		{"SET k v NX XX", "-ERR syntax error"},
		{"SET k v EX x", "-ERR value is not an integer or out of range"},
		{"INCRBY k x", "-ERR value is not an integer or out of range"},
		{"MSET a 1 b", "-ERR wrong number of arguments for 'mset' command"},
		{"FLUSHALL", "-ERR FLUSHALL is disabled on this node (start zpnode with --redis-allow-flush)"},
		{"HELLO 4", "-NOPROTO unsupported protocol version"},
		{"WAIT 1 0", ":0"},
	} {
		nc, br := dial(t, addr)
		io.WriteString(nc, tc.in+"\r\n")
		n := 1
		if strings.HasPrefix(tc.want, "$") {
			n = 2
		}
		if got := strings.Join(readLines(t, br, n), " "); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestClusterSlots lists each partition with its master, then its slaves.
func TestClusterSlots(t *testing.T) {
	f := newFake()
	_, addr := startFront(t, f, Config{})
	nc, br := dial(t, addr)
	io.WriteString(nc, "CLUSTER SLOTS\r\n")
	got := strings.Join(readLines(t, br, 31), " ")
	want := fmt.Sprintf("*2 *4 :0 :8191 *3 $8 10.0.0.1 :9241 $40 %s *3 $8 10.0.0.2 :9241 $40 %s *4 :8192 :16383 *3 $8 10.0.0.2 :9241 $40 %s *3 $8 10.0.0.1 :9241 $40 %s",
		nodeID("10.0.0.1:9231"), nodeID("10.0.0.2:9231"), nodeID("10.0.0.2:9231"), nodeID("10.0.0.1:9231"))
	if got != want {
		t.Fatalf("CLUSTER SLOTS\n%s\nwant\n%s", got, want)
	}
}

// TestClusterSlotsAfterSplit: with partitions whose ranges are not in id
// order (as after splits), CLUSTER SLOTS lists them in slot order with
// their own ranges, and MULTI redirects a key by its partition's range.
func TestClusterSlotsAfterSplit(t *testing.T) {
	f := newFake()
	n1, n2 := "10.0.0.1:9231", "10.0.0.2:9231"
	f.topo.Tables[0] = &zppb.Table{Name: "default", PartitionCount: 3, Partitions: []*zppb.Partition{
		{Id: 0, Master: n1, Slaves: []string{n2}, SlotBegin: 0, SlotEnd: 4096},
		{Id: 1, Master: n1, Slaves: []string{n2}, SlotBegin: 8192, SlotEnd: 16384},
		{Id: 2, Master: n2, Slaves: []string{n1}, SlotBegin: 4096, SlotEnd: 8192},
	}}
	_, addr := startFront(t, f, Config{})
	nc, br := dial(t, addr)
	io.WriteString(nc, "CLUSTER SLOTS\r\n")
	got := strings.Join(readLines(t, br, 46), " ")
	entry := func(b, e int, m, s string) string {
		return fmt.Sprintf("*4 :%d :%d *3 $8 %s :9241 $40 %s *3 $8 %s :9241 $40 %s", b, e, m[:8], nodeID(m), s[:8], nodeID(s))
	}
	want := "*3 " + entry(0, 4095, n1, n2) + " " + entry(4096, 8191, n2, n1) + " " + entry(8192, 16383, n1, n2)
	if got != want {
		t.Fatalf("CLUSTER SLOTS\n%s\nwant\n%s", got, want)
	}
	// "k" (slot 7629) is partition 2's, mastered by 10.0.0.2; "foo" (slot
	// 12182) partition 1's, mastered here. The even layout of three
	// partitions would say the opposite.
	io.WriteString(nc, "MULTI\r\nSET k v\r\nSET foo v\r\nDISCARD\r\n")
	want = "+OK -MOVED 7629 10.0.0.2:9241 +QUEUED +OK"
	if got := strings.Join(readLines(t, br, 4), " "); got != want {
		t.Fatalf("replies %q\nwant %q", got, want)
	}
}

// TestStalledHalfCommand: a client declaring a large bulk and sending a few
// bytes of it costs the first read buffer, however long it stalls.
func TestStalledHalfCommand(t *testing.T) {
	f := newFake()
	s, addr := startFront(t, f, Config{})
	nc, _ := dial(t, addr)
	io.WriteString(nc, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10000000\r\n")
	io.WriteString(nc, strings.Repeat("x", 40<<10))
	var size int
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs := s.clients()
		if len(cs) == 1 {
			// The connection goroutine owns the reader; only the size is
			// read here, once its input has all arrived.
			size = int(cs[0].inBuf.Load())
			if size >= 40<<10 || time.Now().After(deadline) {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	if size > 128<<10 {
		t.Fatalf("read buffer %d bytes for 40 KiB received", size)
	}
}

// TestProtocolErrorCloses answers malformed input with Redis's error and
// closes, after answering the commands before it.
func TestProtocolErrorCloses(t *testing.T) {
	f := newFake()
	_, addr := startFront(t, f, Config{})
	nc, br := dial(t, addr)
	io.WriteString(nc, "PING\r\n*2\r\n:1\r\n")
	if got := strings.Join(readLines(t, br, 2), " "); got != "+PONG -ERR Protocol error: expected '$', got ':'" {
		t.Fatalf("got %q", got)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("not closed: %v", err)
	}
}

// TestIdleTimeout closes a connection that sends nothing.
func TestIdleTimeout(t *testing.T) {
	f := newFake()
	_, addr := startFront(t, f, Config{IdleTimeout: 50 * time.Millisecond})
	_, br := dial(t, addr)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection not closed: %v", err)
	}
}

// TestMultiExec: commands are QUEUED and run as one MultiRequest at EXEC,
// a command's own error among the answers; an error while queueing aborts
// EXEC; keys this node does not master are MOVED while queueing.
func TestMultiExec(t *testing.T) {
	f := newFake()
	_, addr := startFront(t, f, Config{})
	nc, br := dial(t, addr)
	// {a} is in partition 1 (slot 15495), which 10.0.0.2 masters; foo
	// (slot 12182) too; "k" (slot 7629) is partition 0, mastered here.
	io.WriteString(nc, "MULTI\r\nSET k v\r\nINCR k\r\nSET k v FOO\r\nGET k\r\nPING\r\nEXEC\r\n")
	want := "+OK +QUEUED +QUEUED +QUEUED +QUEUED +QUEUED *5 +OK -ERR value is not an integer or out of range -ERR syntax error $1 v +PONG"
	if got := strings.Join(readLines(t, br, 13), " "); got != want {
		t.Fatalf("replies %q\nwant %q", got, want)
	}
	io.WriteString(nc, "MULTI\r\nSET k v\r\nNOSUCH\r\nEXEC\r\n")
	want = "+OK +QUEUED -ERR unknown command 'NOSUCH', with args beginning with:  -EXECABORT Transaction discarded because of previous errors."
	if got := strings.Join(readLines(t, br, 4), " "); got != want {
		t.Fatalf("replies %q\nwant %q", got, want)
	}
	io.WriteString(nc, "MULTI\r\nSET foo 1\r\nDISCARD\r\nMULTI\r\nMULTI\r\nWATCH k\r\nSCAN 0\r\nEXEC\r\n")
	want = "+OK -MOVED 12182 10.0.0.2:9241 +OK +OK -ERR MULTI calls can not be nested -ERR WATCH inside MULTI is not allowed -ERR Command not allowed inside a transaction -EXECABORT Transaction discarded because of previous errors."
	if got := strings.Join(readLines(t, br, 8), " "); got != want {
		t.Fatalf("replies %q\nwant %q", got, want)
	}
	// Keys of two slots this node masters: CROSSSLOT at EXEC.
	io.WriteString(nc, "MULTI\r\nSET k 1\r\nSET b 1\r\nEXEC\r\n")
	want = "+OK +QUEUED +QUEUED -CROSSSLOT Keys in request don't hash to the same slot"
	if got := strings.Join(readLines(t, br, 4), " "); got != want {
		t.Fatalf("replies %q\nwant %q", got, want)
	}
}

// TestMaxClients: a connection over the gate's bound is answered Redis's
// "-ERR max number of clients reached" and closed; the clients held keep
// working, and a freed slot is taken again.
func TestMaxClients(t *testing.T) {
	f := newFake()
	gate := accept.NewGate(accept.Limits{MaxConns: 2})
	_, addr := startFront(t, f, Config{Gate: gate})
	var held []net.Conn
	for range 2 {
		nc, br := dial(t, addr)
		io.WriteString(nc, "PING\r\n")
		if got := readLines(t, br, 1)[0]; got != "+PONG" {
			t.Fatalf("a client within the bound: %q", got)
		}
		held = append(held, nc)
	}
	_, br := dial(t, addr)
	if got := readLines(t, br, 1)[0]; got != "-ERR max number of clients reached" {
		t.Fatalf("over the bound: %q", got)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("refused client not closed: %v", err)
	}
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for gate.Held() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Held() = %d after one client left", gate.Held())
		}
		time.Sleep(10 * time.Millisecond)
	}
	nc, br := dial(t, addr)
	io.WriteString(nc, "PING\r\n")
	if got := readLines(t, br, 1)[0]; got != "+PONG" {
		t.Fatalf("a client in the freed slot: %q", got)
	}
}

// TestSlowCommand: a command begun and trickled in is cut off after
// FrameTimeout; a client idle between commands is not.
func TestSlowCommand(t *testing.T) {
	f := newFake()
	_, addr := startFront(t, f, Config{FrameTimeout: 200 * time.Millisecond})
	idle, ibr := dial(t, addr)
	slow, sbr := dial(t, addr)
	io.WriteString(slow, "*3\r\n$3\r\nSET\r\n$1\r\nk")
	if _, err := sbr.ReadByte(); err != io.EOF {
		t.Fatalf("a trickled command not cut off: %v", err)
	}
	io.WriteString(idle, "PING\r\n")
	if got := readLines(t, ibr, 1)[0]; got != "+PONG" {
		t.Fatalf("an idle client after the frame timeout: %q", got)
	}
}
