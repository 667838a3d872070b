package fsm

import (
	"bytes"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func credential(t *testing.T, password string) *zppb.TableCredential {
	t.Helper()
	c, err := tableauth.New([]byte(password), time.UnixMilli(1000), tableauth.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hasVerifiers reports whether any table in tables carries credentials.
func hasVerifiers(tables []*zppb.Table) bool {
	for _, tb := range tables {
		if len(tb.GetCredentials()) > 0 {
			return true
		}
	}
	return false
}

// TestTableCredentials: passwords set at creation and rotated (add, then
// remove), every invalid change rejected whole; the verifiers reach only
// a PULL that asks for credentials, every other read shows protected; a
// snapshot keeps them, and one without them (older) restores open tables.
func TestTableCredentials(t *testing.T) {
	f := seeded(t)
	old, next := credential(t, "old"), credential(t, "new")
	tb := table("p", "a:1")
	tb.Credentials = []*zppb.TableCredential{old}
	mustApply(t, f, createCmd(tb, 0))

	bad := proto.Clone(next).(*zppb.TableCredential)
	bad.Hash[0] ^= 1
	tooMany := make([]*zppb.TableCredential, tableauth.MaxCredentials)
	for i := range tooMany {
		tooMany[i] = old
	}
	epoch := f.Epoch()
	for name, cmd := range map[string]*zppb.MetaCommand{
		"unknown table":          SetTableCredentials("nope", 0, []*zppb.TableCredential{next}, nil),
		"recreated table":        SetTableCredentials("p", 1, []*zppb.TableCredential{next}, nil),
		"nothing to do":          SetTableCredentials("p", 0, nil, nil),
		"tampered verifier":      SetTableCredentials("p", 0, []*zppb.TableCredential{bad}, nil),
		"duplicate":              SetTableCredentials("p", 0, []*zppb.TableCredential{old}, nil),
		"too many":               SetTableCredentials("p", 0, tooMany, []string{old.Id}),
		"unknown id":             SetTableCredentials("p", 0, []*zppb.TableCredential{next}, []string{"000000000000"}),
		"the last one":           SetTableCredentials("p", 0, nil, []string{old.Id}),
		"create with a tampered": createCmd(func() *zppb.Table { x := table("q", "a:1"); x.Credentials = []*zppb.TableCredential{bad}; return x }(), 0),
	} {
		b, _ := proto.Marshal(cmd)
		if res := applyLog(f, b); res.Err == nil {
			t.Errorf("%s: applied", name)
		}
	}
	if f.Epoch() != epoch {
		t.Fatalf("rejected commands moved the epoch from %d to %d", epoch, f.Epoch())
	}

	// Rotation: both, then the new one alone.
	mustApply(t, f, SetTableCredentials("p", 0, []*zppb.TableCredential{next}, nil))
	if creds, _, _ := f.Credentials("p"); len(creds) != 2 {
		t.Fatalf("after add: %v", creds)
	}
	mustApply(t, f, SetTableCredentials("p", 0, nil, []string{old.Id}))
	creds, _, err := f.Credentials("p")
	if err != nil || len(creds) != 1 || creds[0].Id != next.Id || !bytes.Equal(creds[0].Hash, next.Hash) {
		t.Fatalf("after remove: %v, %v", creds, err)
	}

	// Only a PULL asking for credentials carries them.
	topo, _ := f.Topology("")
	one, _ := f.Topology("p")
	tables, _ := f.Tables()
	for name, got := range map[string][]*zppb.Table{
		"Topology": topo.Tables, "Topology(p)": one.Tables, "Tables": tables,
		"Pull": f.Pull(0).Topology.Tables, "Pull delta": f.Pull(epoch).Topology.Tables,
		"PullPartitions": f.PullPartitions(epoch).PartialTables,
	} {
		if hasVerifiers(got) {
			t.Errorf("%s carries verifiers", name)
		}
	}
	if p := one.Tables[0]; !p.Protected {
		t.Errorf("Topology(p) not protected: %v", p)
	}
	for _, since := range []uint64{0, epoch} {
		for _, creds := range []bool{false, true} {
			head, shared := f.PullShared(since, true, creds)
			b, _ := proto.Marshal(&zppb.Response{Result: &zppb.Response_Pull{Pull: head}})
			resp := &zppb.Response{}
			if err := proto.Unmarshal(append(b, shared...), resp); err != nil {
				t.Fatal(err)
			}
			if got := hasVerifiers(resp.GetPull().GetTopology().GetTables()); got != creds {
				t.Errorf("PullShared(since %d, creds %t) carries verifiers: %t", since, creds, got)
			}
		}
	}

	// A snapshot keeps them.
	g := restored(t, f, nil)
	if creds, _, _ := g.Credentials("p"); len(creds) != 1 || !proto.Equal(creds[0], next) {
		t.Fatalf("restored credentials: %v", creds)
	}
	// A snapshot of a meta before passwords: every table open.
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	snap.Persist(&s)
	ms := &zppb.MetaSnapshot{}
	proto.Unmarshal(s.Bytes(), ms)
	for _, tb := range ms.Tables {
		tb.Credentials, tb.Protected = nil, false
	}
	data, _ := proto.Marshal(ms)
	h := New(quiet)
	if err := h.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if one, _ := h.Topology("p"); tableauth.Protected(one.Tables[0]) {
		t.Fatalf("table of an old snapshot protected: %v", one.Tables[0])
	}
}

// TestCommandLoggedWithoutVerifiers: a rejected command is logged without
// the salts and hashes of the verifiers it carries; the command itself is
// left whole.
func TestCommandLoggedWithoutVerifiers(t *testing.T) {
	c := credential(t, "pw")
	tb := table("p", "a:1")
	tb.Credentials = []*zppb.TableCredential{c}
	for _, cmd := range []*zppb.MetaCommand{createCmd(tb, 0), SetTableCredentials("p", 0, []*zppb.TableCredential{c}, nil)} {
		logged := withoutVerifiers(cmd)
		b, _ := proto.Marshal(logged)
		if bytes.Contains(b, c.Hash) || bytes.Contains(b, c.Salt) || !bytes.Contains(b, []byte(c.Id)) {
			t.Errorf("logged %v carries a verifier, or not its id", logged)
		}
		if orig, _ := proto.Marshal(cmd); !bytes.Contains(orig, c.Hash) {
			t.Errorf("the command itself lost its verifier")
		}
	}
	if cmd := register("a:1"); withoutVerifiers(cmd) != cmd {
		t.Error("a command without verifiers copied")
	}
}
