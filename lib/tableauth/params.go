package tableauth

// Cheap are the least costs Validate accepts (one pass over 64 KiB): for
// tests only, where the race detector makes the defaults take seconds per
// verification. Never for a real cluster.
var Cheap = Params{Time: 1, MemoryKiB: 64, Threads: 1}
