package secret

import (
	"fmt"
	"testing"
	"time"
)

// TestFailureLimiter: five wrong secrets in a burst, then one per two
// seconds; per client IP whatever the port; other clients unaffected;
// the clients remembered stay bounded.
func TestFailureLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewFailureLimiter()
	l.now = func() time.Time { return now }
	for i := range failureBurst {
		if !l.Allow(fmt.Sprintf("10.0.0.1:%d", 5000+i)) {
			t.Fatalf("attempt %d refused within the burst", i)
		}
		l.Failed(fmt.Sprintf("10.0.0.1:%d", 5000+i))
	}
	if l.Allow("10.0.0.1:6000") {
		t.Fatal("a sixth attempt at once allowed")
	}
	if !l.Allow("10.0.0.2:5000") {
		t.Fatal("another client refused")
	}
	now = now.Add(failureRefill)
	if !l.Allow("10.0.0.1:6000") {
		t.Fatal("no attempt back after the refill time")
	}
	l.Failed("10.0.0.1:6000")
	if l.Allow("10.0.0.1:6000") {
		t.Fatal("a second attempt within the refill time allowed")
	}
	for i := range 2 * maxFailedAddrs {
		l.Failed(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255))
	}
	if n := len(l.left); n > maxFailedAddrs {
		t.Fatalf("%d clients remembered, bound %d", n, maxFailedAddrs)
	}
}
