package server

import "testing"

// TestNextMeta: the next heartbeat starts with the leader an answer named,
// unless it is unknown to the node or did not answer this time.
func TestNextMeta(t *testing.T) {
	addrs := []string{"m0:9221", "m1:9221", "m2:9221"}
	tests := []struct {
		name            string
		first, answered int
		leader          string
		want            int
	}{
		{"the leader answered", 0, 0, "m0:9221", 0},
		{"a follower answered first", 0, 0, "m2:9221", 2},
		{"a follower answered after one failed", 1, 2, "m0:9221", 0},
		{"the leader failed before the follower answered", 2, 1, "m0:9221", 1},
		{"the leader failed, wrapping", 0, 2, "m1:9221", 2},
		{"leader unknown to the node", 1, 1, "10.0.0.9:9221", 1},
		{"no leader named", 2, 2, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextMeta(addrs, tt.first, tt.answered, tt.leader); got != tt.want {
				t.Errorf("NextMeta(first %d, answered %d, %q) = %d, want %d", tt.first, tt.answered, tt.leader, got, tt.want)
			}
		})
	}
}
