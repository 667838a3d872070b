//go:build race

package placement

// raceEnabled: the race detector slows the planner tenfold; the sweeps
// sample fewer cases under it.
const raceEnabled = true
