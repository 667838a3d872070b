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

// Listen returns listeners on n distinct 127.0.0.1 ports that this
// process has not picked before: for a server that binds its port at once
// (and again, the same one, when it restarts).
func Listen(n int) ([]net.Listener, error) {
	high := rangeEnd()
	mu.Lock()
	defer mu.Unlock()
	out := make([]net.Listener, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 50*n+(high-low) {
			for _, ln := range out {
				ln.Close()
			}
			return nil, ErrExhausted
		}
		p := low + rand.IntN(high-low)
		if handed[p] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // taken
		}
		handed[p] = true
		out = append(out, ln)
	}
	return out, nil
}

// Ports returns n distinct ports, free a moment ago on 127.0.0.1, that
// this process has not picked before: for a server started as another
// process.
func Ports(n int) ([]int, error) {
	lns, err := Listen(n)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(lns))
	for i, ln := range lns {
		out[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
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
