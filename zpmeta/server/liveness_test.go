package server

import (
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestStartupProgressKept: the leader lists a node's start-up progress
// until the node PINGs, the leadership changes, or the progress is older
// than the age asked for (a node that died while starting).
func TestStartupProgressKept(t *testing.T) {
	const node, maxAge = "n1:1", 3 * time.Second
	at := time.Unix(1000, 0)
	tests := []struct {
		name  string
		after func(l *liveness)
		now   time.Time
		want  bool
	}{
		{"fresh", func(*liveness) {}, at.Add(time.Second), true},
		{"too old", func(*liveness) {}, at.Add(maxAge), false},
		{"the node PINGed", func(l *liveness) { l.started(node) }, at.Add(time.Second), false},
		{"a new leadership", func(l *liveness) { l.reset(at) }, at.Add(time.Second), false},
		{"a heartbeat of another node", func(l *liveness) { l.started("n2:1") }, at.Add(time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLiveness()
			l.startup(node, at, &zppb.StartupProgress{Opened: 1, Total: 2})
			tt.after(l)
			if got := l.startupProgress(node, tt.now, maxAge) != nil; got != tt.want {
				t.Errorf("progress listed: %v, want %v", got, tt.want)
			}
		})
	}
}
