package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestPorts: the ports picked are distinct, never picked twice by one
// process, below the ephemeral range, and free: a server can listen on
// each.
func TestPorts(t *testing.T) {
	seen := make(map[int]bool)
	for range 3 {
		ports, err := Ports(20)
		if err != nil {
			t.Fatal(err)
		}
		if len(ports) != 20 {
			t.Fatalf("Ports(20) gave %d ports", len(ports))
		}
		for _, p := range ports {
			if seen[p] {
				t.Errorf("port %d picked twice", p)
			}
			seen[p] = true
			if p < low || p >= rangeEnd() {
				t.Errorf("port %d outside [%d, %d)", p, low, rangeEnd())
			}
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Errorf("port %d is not free: %v", p, err)
				continue
			}
			ln.Close()
		}
	}
}

// TestTakenPortSkipped: a port something listens on is never picked.
func TestTakenPortSkipped(t *testing.T) {
	var taken []net.Listener
	defer func() {
		for _, ln := range taken {
			ln.Close()
		}
	}()
	busy := make(map[int]bool)
	// Occupy a block of the range, then pick many: none is in the block.
	for p := low; len(taken) < 200 && p < rangeEnd(); p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		taken = append(taken, ln)
		busy[p] = true
	}
	ports, err := Ports(500)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if busy[p] {
			t.Fatalf("port %d picked while something listens on it", p)
		}
	}
}

// TestListen: the listeners are on distinct ports below the ephemeral
// range that Ports never hands out again.
func TestListen(t *testing.T) {
	lns, err := Listen(10)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[int]bool)
	for _, ln := range lns {
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if got[p] || p < low || p >= rangeEnd() {
			t.Errorf("listener on port %d: a repeat or outside [%d, %d)", p, low, rangeEnd())
		}
		got[p] = true
	}
	ports, err := Ports(200)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if got[p] {
			t.Errorf("port %d of a listener handed out again", p)
		}
	}
}
