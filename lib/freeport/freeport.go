// Package freeport picks loopback TCP ports for the servers tests and
// benchmarks start. A port is free when picked and lies below the kernel's
// ephemeral range, so that the kernel never hands it out on its own: not
// to a listener on port 0 in another test process, nor as the local end of
// an outgoing connection. A server that a test stops and starts again
// keeps its address (a node's address is its identity), and a port from
// the ephemeral range could be taken while it is down ("bind: address
// already in use" on the restart).
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// low is the first port picked; ports below it are left to well-known
// services.
const low = 10000

// ephemeralStart is where Linux's default ephemeral range begins.
const ephemeralStart = 32768

var (
	mu sync.Mutex
	// handed holds the ports this process picked: never picked twice,
	// since a picked port is free again until its server listens.
	handed = make(map[int]bool)
)

// ErrExhausted means no free port is left to pick.
var ErrExhausted = errors.New("freeport: no free port left below the ephemeral range")

// Ports returns n distinct ports, free a moment ago on 127.0.0.1, that
// this process has not picked before.
func Ports(n int) ([]int, error) {
	high := rangeEnd()
	mu.Lock()
	defer mu.Unlock()
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	out := make([]int, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 50*n+(high-low) {
			return nil, ErrExhausted
		}
		p := low + rand.IntN(high-low)
		if handed[p] {
			continue
		}
		// Held until all n are picked, so that none is picked twice.
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // taken
		}
		held = append(held, ln)
		handed[p] = true
		out = append(out, p)
	}
	return out, nil
}

// Addrs is Ports as "127.0.0.1:port" addresses.
func Addrs(n int) ([]string, error) {
	ports, err := Ports(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out, nil
}

// rangeEnd is the end of the range ports are picked from: the start of
// the machine's ephemeral range, or Linux's default where it cannot be
// read or leaves too little room below it.
func rangeEnd() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return ephemeralStart
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ephemeralStart
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start < low+1000 {
		return ephemeralStart
	}
	return min(start, 65536)
}
