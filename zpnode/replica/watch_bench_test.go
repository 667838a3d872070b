package replica

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkMinSyncWrite times a write with min_sync_replicas=1 from a
// master to a slave over TCP, with and without the slave node's WatchHub:
//
//	go test -run - -bench MinSyncWrite -benchtime 200x ./zpnode/replica
//
// busy: writes one after another, so the slave's pulls never come back
// empty and the hub never takes part (the cost of the watch to a busy
// partition's write path). idle: before each write the slave waits idle,
// in its own pull (pull) or in the hub's watch (watched), which the write
// must wake first: a dial and a TRYSYNC before the pull that takes it.
func BenchmarkMinSyncWrite(b *testing.B) {
	for _, idle := range []bool{false, true} {
		for _, watch := range []bool{false, true} {
			name := map[bool]string{false: "busy", true: "idle"}[idle] + "/" + map[bool]string{false: "pull", true: "watched"}[watch]
			b.Run(name, func(b *testing.B) { benchMinSyncWrite(b, idle, watch) })
		}
	}
}

func benchMinSyncWrite(b *testing.B, idle, watch bool) {
	shared := newShared(b)
	logger := slog.New(slog.DiscardHandler)
	m, err := Open(Options{Dir: filepath.Join(b.TempDir(), "m"), Table: "t", ID: 0, Shared: shared, Self: "master", Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	m.SetRole(Assignment{Role: Master, Master: "master", Term: 1, Slaves: []string{"slave"}, MinSync: 1})
	node := startMasterNode(b, true, m)
	d := &dialer{}
	var hub *WatchHub
	if watch {
		hub = NewWatchHub(WatchHubOptions{Self: "slave", Dial: d.dial, Logger: logger, Wait: testWait})
		defer hub.Close()
	}
	s, err := Open(Options{Dir: filepath.Join(b.TempDir(), "s"), Table: "t", ID: 0, Shared: shared, Self: "slave", Logger: logger,
		Dial: d.dial, Watch: hub, PullWait: testWait})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.SetRole(Assignment{Role: Slave, Master: node.addr, Term: 1})
	ctx := context.Background()
	waitIdle := func() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var ok bool
			if watch {
				replicas, _ := hub.Watching()
				ok = replicas == 1
			} else {
				m.mu.Lock()
				p := m.m.peers["slave"]
				ok = p != nil && p.waiting > 0
				m.mu.Unlock()
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				b.Fatal("the slave did not go idle")
			}
			time.Sleep(time.Millisecond) // polling pace
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if idle {
			b.StopTimer()
			waitIdle()
			b.StartTimer()
		}
		if err := m.Write(ctx, nil, put(fmt.Sprintf("k%d", i), "v", 0)); err != nil {
			b.Fatal(err)
		}
	}
}
