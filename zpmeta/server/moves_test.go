package server

import (
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestCaughtUp covers the handover's second check: what the target says of
// itself must match the master's last record exactly.
func TestCaughtUp(t *testing.T) {
	master := targetPos{masterTerm: 3, masterLSN: 120}
	tests := []struct {
		name   string
		target *zppb.ReplicaInfo
		ok     bool
	}{
		{"same last record", &zppb.ReplicaInfo{Role: "slave", Term: 3, Lsn: 120}, true},
		{"empty replica the master thinks caught up", &zppb.ReplicaInfo{Role: "slave"}, false},
		{"behind", &zppb.ReplicaInfo{Role: "slave", Term: 3, Lsn: 119}, false},
		{"same lsn, another term", &zppb.ReplicaInfo{Role: "slave", Term: 2, Lsn: 120}, false},
		{"ahead (a tail the master does not have)", &zppb.ReplicaInfo{Role: "slave", Term: 3, Lsn: 121}, false},
		{"not a slave", &zppb.ReplicaInfo{Role: "master", Term: 3, Lsn: 120}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := caughtUp(master, tt.target)
			if (err == nil) != tt.ok {
				t.Fatalf("caughtUp = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
