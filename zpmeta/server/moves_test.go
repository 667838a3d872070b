package server

import (
	"testing"
	"time"

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

func TestMassSilenceHold(t *testing.T) {
	const timeout = time.Second
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name        string
		expired, up int
		at          time.Duration
		hold        bool
	}{
		{"one of three silent", 1, 3, 0, false},
		{"two of three silent", 2, 3, 0, true},
		{"still, within the hold", 3, 3, 2 * time.Second, true},
		{"two spoke again, one has not yet", 1, 3, 2500 * time.Millisecond, true},
		{"still, past the hold", 3, 3, 3 * time.Second, false},
		{"all speak again", 0, 3, 4 * time.Second, false},
		{"half of four is not most", 2, 4, 5 * time.Second, false},
		{"a lone node", 1, 1, 6 * time.Second, false},
		{"three of four, a new hold", 3, 4, 7 * time.Second, true},
	}
	var m massSilence
	for _, st := range steps {
		if got := m.hold(st.expired, st.up, t0.Add(st.at), timeout); got != st.hold {
			t.Fatalf("%s: hold = %v, want %v", st.name, got, st.hold)
		}
	}
}
