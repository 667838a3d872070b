package accept

import (
	"errors"
	"net"
	"testing"
)

func addr(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }

// TestGate: connections are admitted up to the bounds, in all and per IP
// (whatever the port); leaving frees the slot once, however often called;
// a nil Gate admits everything.
func TestGate(t *testing.T) {
	g := NewGate(Limits{MaxConns: 3, MaxConnsPerAddr: 2})
	var leaves []func()
	for i, tc := range []struct {
		from string
		want error
	}{
		{"10.0.0.1", nil},
		{"10.0.0.1", nil},
		{"10.0.0.1", ErrTooManyConnsFromAddr},
		{"10.0.0.2", nil},
		{"10.0.0.3", ErrTooManyConns},
	} {
		leave, err := g.Enter(addr(tc.from, 1000+i))
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Fatalf("connection %d from %s: %v, want %v", i, tc.from, err, tc.want)
		}
		if err == nil {
			leaves = append(leaves, leave)
		}
	}
	if g.Held() != 3 || g.Refused() != 2 {
		t.Fatalf("held %d refused %d, want 3 and 2", g.Held(), g.Refused())
	}
	leaves[0]()
	leaves[0]()
	if g.Held() != 2 {
		t.Fatalf("held %d after one left (twice), want 2", g.Held())
	}
	if _, err := g.Enter(addr("10.0.0.1", 2000)); err != nil {
		t.Fatalf("a connection in the freed slot: %v", err)
	}
	var none *Gate
	if leave, err := none.Enter(addr("10.0.0.9", 1)); err != nil || leave == nil {
		t.Fatalf("nil gate: %v", err)
	}
}
