package server

import (
	"testing"
	"time"
)

// TestNotifyDelay: notifyPaced NOTIFYs a small cluster's nodes at once and
// spreads a large one's over time, never more than notifyPerTick a tick
// after the first burst.
func TestNotifyDelay(t *testing.T) {
	for _, tc := range []struct {
		i    int
		want time.Duration
	}{
		{0, 0},
		{notifyBurst - 1, 0},
		{notifyBurst, notifyTick},
		{notifyBurst + notifyPerTick - 1, notifyTick},
		{notifyBurst + notifyPerTick, 2 * notifyTick},
		{999, time.Duration((999-notifyBurst)/notifyPerTick+1) * notifyTick},
	} {
		if got := notifyDelay(tc.i); got != tc.want {
			t.Errorf("notifyDelay(%d) = %v, want %v", tc.i, got, tc.want)
		}
	}
	// A thousand nodes all hear within a second.
	if d := notifyDelay(999); d > time.Second {
		t.Errorf("the 1,000th node is NOTIFYed %v after the change", d)
	}
}
