//go:build race

package cmd

// raceEnabled: under the race detector (and a busy machine) copying tens
// of MiB takes minutes; the cases that only move large values, with no
// concurrency of their own, are left to the runs without it.
const raceEnabled = true
