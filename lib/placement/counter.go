package placement

// counter describes the convex cost of a count. Units up to lo and beyond
// hi (the band) cost one unit of level each, as a reward for filling or a
// penalty for overfilling; units between the band and [aimLo, aimHi] one
// unit of lvlAim; units between that and the core [coreLo, coreHi] one unit
// of lvlCentre. lo <= aimLo <= coreLo <= coreHi <= aimHi <= hi.
type counter struct {
	lo, aimLo, coreLo, coreHi, aimHi, hi int
	level                                int
}

// addCounter adds parallel arcs u->v that charge c for a count that starts
// at offset (load already there) and may grow by up to room units. Rewards
// come first so a min-cost flow fills them before anything else.
func (g *graph) addCounter(u, v int, offset, room int, c counter) {
	type piece struct {
		upTo  int // the piece covers counts (previous upTo, upTo]
		price price
	}
	const inf = 1 << 30
	pieces := [...]piece{
		{c.lo, earn(c.level)},
		{c.aimLo, earn(lvlAim)},
		{c.coreLo, earn(lvlCentre)},
		{c.coreHi, free},
		{c.aimHi, pay(lvlCentre)},
		{c.hi, pay(lvlAim)},
		{inf, pay(c.level)},
	}
	from := offset // counts (from, offset+room] are to be priced
	end := offset + room
	for _, p := range pieces {
		if from >= end {
			return
		}
		if p.upTo <= from {
			continue
		}
		top := min(p.upTo, end)
		g.edge(u, v, top-from, p.price)
		from = top
	}
}
