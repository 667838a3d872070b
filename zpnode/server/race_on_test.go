//go:build race

package server_test

// raceEnabled: the race detector slows opening RocksDB several times, so
// the scale tests use fewer replicas under it.
const raceEnabled = true
