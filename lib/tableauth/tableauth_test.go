package tableauth

import (
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestVerifier: a verifier matches its password only; its id is its
// fingerprint; the cache opens a verified password without argon2id and
// stops opening it once the credential is gone; Strip hides verifiers.
func TestVerifier(t *testing.T) {
	c, err := New([]byte("s3cret"), time.Unix(1000, 0), Cheap)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(c); err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"s3cret": true, "s3cret ": false, "": false, "other": false} {
		if Matches(c, []byte(pw)) != want {
			t.Errorf("Matches(%q) = %t, want %t", pw, !want, want)
		}
	}
	if _, err := New(nil, time.Now(), Cheap); err == nil {
		t.Error("an empty password hashed")
	}
	tampered := Public(c)
	tampered.Salt, tampered.Hash = c.Salt, append([]byte{}, c.Hash...)
	tampered.Hash[0] ^= 1
	if Validate(tampered) == nil {
		t.Error("a verifier whose id is not its fingerprint validated")
	}

	var cache Cache
	creds := []*zppb.TableCredential{c}
	if cache.Check(creds, []byte("s3cret")) {
		t.Fatal("hit before any verification")
	}
	if !cache.Verify(creds, []byte("s3cret")) || !cache.Check(creds, []byte("s3cret")) {
		t.Fatal("verified password not cached")
	}
	if cache.Verify(creds, []byte("wrong")) || cache.Check(creds, []byte("wrong")) {
		t.Fatal("wrong password opened")
	}
	other, _ := New([]byte("new"), time.Now(), Cheap)
	if cache.Check([]*zppb.TableCredential{other}, []byte("s3cret")) {
		t.Fatal("cached password opened after its credential was removed")
	}

	tb := &zppb.Table{Name: "t", Credentials: creds}
	st := Strip(tb)
	if len(st.Credentials) != 0 || !st.Protected || st.Name != "t" || len(tb.Credentials) != 1 {
		t.Fatalf("Strip = %v (original %v)", st, tb)
	}
	if p := Public(c); len(p.Salt) != 0 || len(p.Hash) != 0 || p.Id != c.Id {
		t.Fatalf("Public = %v", p)
	}
}

// TestRequestTable: the table of each kind of data command, none for the
// others.
func TestRequestTable(t *testing.T) {
	for _, tc := range []struct {
		req  *zppb.Request
		want string
	}{
		{&zppb.Request{Cmd: &zppb.Request_Get{Get: &zppb.GetRequest{Table: "a"}}}, "a"},
		{&zppb.Request{Cmd: &zppb.Request_Scan{Scan: &zppb.ScanRequest{Table: "b"}}}, "b"},
		{&zppb.Request{Cmd: &zppb.Request_FlushTable{FlushTable: &zppb.FlushTableRequest{Table: "c"}}}, "c"},
		{&zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{}}}, ""},
		{&zppb.Request{Cmd: &zppb.Request_Notify{Notify: &zppb.NotifyRequest{}}}, ""},
		{&zppb.Request{}, ""},
	} {
		if got := RequestTable(tc.req); got != tc.want {
			t.Errorf("RequestTable(%v) = %q, want %q", tc.req, got, tc.want)
		}
	}
}

// TestDefaultParams: the zero Params hash with the defaults, which
// verify (once: seconds under the race detector).
func TestDefaultParams(t *testing.T) {
	c, err := New([]byte("s3cret"), time.Now(), Params{})
	if err != nil || c.Time != DefaultTime || c.MemoryKib != DefaultMemoryKiB || c.Threads != DefaultThreads || !Matches(c, []byte("s3cret")) {
		t.Fatalf("New with the defaults: %v, %v", c, err)
	}
}

// BenchmarkVerify measures one argon2id verification with the default
// parameters: go test ./lib/tableauth -run XXX -bench BenchmarkVerify.
func BenchmarkVerify(b *testing.B) {
	c, _ := New([]byte("s3cret"), time.Now(), Params{})
	for b.Loop() {
		Matches(c, []byte("s3cret"))
	}
}

// BenchmarkCheckCached measures what a request with a verified password
// costs a node (one SHA-256 per credential, a map lookup): go test
// ./lib/tableauth -run XXX -bench BenchmarkCheckCached.
func BenchmarkCheckCached(b *testing.B) {
	c, _ := New([]byte("s3cret"), time.Now(), Cheap)
	creds := []*zppb.TableCredential{c}
	var cache Cache
	cache.Verify(creds, []byte("s3cret"))
	for b.Loop() {
		if !cache.Check(creds, []byte("s3cret")) {
			b.Fatal("miss")
		}
	}
}
