//go:build race

package tests

// raceEnabled: the race detector slows the meta servers and the simulated
// nodes several times over.
const raceEnabled = true
