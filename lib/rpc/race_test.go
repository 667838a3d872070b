//go:build race

package rpc

// raceEnabled: the race detector makes large frames slow to copy and parse.
const raceEnabled = true
