package placement

// Runnable returns the pending moves that may start while running are in
// flight, in pending's order (first fit): a move is taken when neither its
// From nor its To node would then take part in more than maxPerNode moves
// (as source or target; values below 1 count as 1), and when no other move
// of the same partition is running or taken, because a partition's move
// runs the partition through SLOWDOWN and STUCK and two at once would
// interleave those windows.
//
// A partition's MasterMove should run once its Moves are done: its To may be
// a node that only arrives by one of them.
func Runnable(pending, running []Move, maxPerNode int) []Move {
	maxPerNode = max(maxPerNode, 1)
	type partition struct {
		table string
		id    uint32
	}
	busy := map[string]int{}
	parts := map[partition]bool{}
	take := func(m Move) {
		busy[m.From]++
		busy[m.To]++
		parts[partition{m.Table, m.Partition}] = true
	}
	for _, m := range running {
		take(m)
	}
	var out []Move
	for _, m := range pending {
		if parts[partition{m.Table, m.Partition}] || busy[m.From] >= maxPerNode || busy[m.To] >= maxPerNode {
			continue
		}
		take(m)
		out = append(out, m)
	}
	return out
}

// Schedule splits moves into waves that Runnable would start one after the
// other if each wave finished before the next began: within a wave no node
// takes part in more than maxPerNode moves and no partition in more than
// one. It is a preview (for an operator, or a test); a leader that starts
// moves as others finish should call Runnable instead.
func Schedule(moves []Move, maxPerNode int) [][]Move {
	var waves [][]Move
	left := moves
	for len(left) > 0 {
		wave := Runnable(left, nil, maxPerNode)
		waves = append(waves, wave)
		rest := make([]Move, 0, len(left)-len(wave))
		k := 0
		for _, m := range left {
			if k < len(wave) && m == wave[k] {
				k++
				continue
			}
			rest = append(rest, m)
		}
		left = rest
	}
	return waves
}
