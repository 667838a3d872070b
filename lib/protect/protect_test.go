package protect_test

import (
	"errors"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/protect"
)

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9221": true, "127.0.0.2:1": true, "[::1]:9221": true, "localhost:9221": true, "localhost": true,
		"10.0.0.1:9221": false, ":9221": false, "0.0.0.0:9221": false, "[::]:9221": false, "node1.example:9221": false,
	} {
		if got := protect.Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	off := []protect.Guard{{Flag: "--admin-token-file"}, {Flag: "--tls-cert"}}
	on := []protect.Guard{{Flag: "--admin-token-file"}, {Flag: "--tls-cert", On: true}}
	tests := []struct {
		name     string
		addrs    []string
		guards   []protect.Guard
		insecure bool
		refused  bool
	}{
		{"loopback only", []string{"127.0.0.1:9221", ""}, off, false, false},
		{"exposed, unguarded", []string{"127.0.0.1:9221", "0.0.0.0:9231"}, off, false, true},
		{"exposed, guarded", []string{"10.0.0.1:9221"}, on, false, false},
		{"exposed, unguarded, --insecure", []string{":9221"}, off, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protect.Check(tt.addrs, tt.guards, tt.insecure)
			if got := errors.Is(err, protect.ErrUnprotected); got != tt.refused {
				t.Fatalf("Check = %v, want refused=%v", err, tt.refused)
			}
		})
	}
}
