package placement

import "slices"

// The planner's layouts are min-cost flows. Costs are lexicographic vectors:
// any amount of a higher-priority cost outweighs all lower-priority costs, so
// the rules' priority order holds exactly instead of depending on how large
// hand-picked weights are relative to the cluster.
const (
	// lvlCluster counts units of a node's load (over all tables) outside its
	// allowed band.
	lvlCluster = iota
	// lvlTable counts units of a node's load within one table outside its
	// allowed band.
	lvlTable
	// lvlRigid counts masters of one-replica partitions (which cannot
	// switch over) beyond what leaves room for the node's master band; see
	// problem.rigidCounters.
	lvlRigid
	// lvlAim counts units of load that are within the band but not at the
	// share rounded down or up, for a count that is outside its band now:
	// such a count is brought to the rounded share (see band.target).
	lvlAim
	// lvlChange counts replica moves (replica flow) or switchovers (master
	// flow).
	lvlChange
	// lvlSpread counts replicas of a partition beyond the first in one zone
	// or rack, within the caps: among equally cheap layouts, the one that
	// spreads each partition over the most zones and racks.
	lvlSpread
	// lvlCentre counts units of load that are within the band but not at the
	// share rounded down or up: among equally cheap layouts, the most even.
	lvlCentre
	levels
)

// cost is a lexicographic vector; components stay small (a distance is
// bounded by the length of a path), so int32 is ample and halves the
// memory the phases scan.
type cost [levels]int32

func (a cost) add(b cost) cost {
	for i := range a {
		a[i] += b[i]
	}
	return a
}

func (a cost) sub(b cost) cost {
	for i := range a {
		a[i] -= b[i]
	}
	return a
}

func (a cost) cmp(b cost) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// price is an arc's cost, which is always zero or one unit of one level:
// +k costs one unit of level k-1, -k earns one. A residual twin has the
// opposite price.
type price int8

// pay and earn return the price of one unit of level paid or earned.
func pay(level int) price  { return price(level + 1) }
func earn(level int) price { return -price(level + 1) }

// free is the price of an arc that costs nothing.
const free price = 0

func (p price) cost() cost {
	var c cost
	switch {
	case p > 0:
		c[p-1] = 1
	case p < 0:
		c[-p-1] = -1
	}
	return c
}

// arc is kept small because the phases scan every arc repeatedly.
type arc struct {
	from, to int32
	cap      int32
	price    price
}

// graph is a flow network. Arc e's residual twin is e^1.
type graph struct {
	arcs     []arc
	vertices int
	// out[first[v]:first[v+1]] are the arcs out of v, in the order added.
	first, out []int32
	pot        []cost
	// Scratch for the phases, kept to avoid allocating per phase.
	dist       []cost
	seen, done []bool
	level      []int32
	next       []int32
	heap       []heapItem
}

func newGraph() *graph { return &graph{} }

func (g *graph) vertex() int {
	g.vertices++
	return g.vertices - 1
}

// nVertices adds n vertices and returns them in order: one per node, in
// the flows that give each node (or each table's share on a node) a vertex.
func (g *graph) nVertices(n int) []int {
	vs := make([]int, n)
	for i := range vs {
		vs[i] = g.vertex()
	}
	return vs
}

// edge adds an arc u->v and returns its index, whose flow is flow(e).
func (g *graph) edge(u, v int, capacity int, p price) int {
	e := len(g.arcs)
	g.arcs = append(g.arcs,
		arc{from: int32(u), to: int32(v), cap: int32(capacity), price: p},
		arc{from: int32(v), to: int32(u), cap: 0, price: -p})
	return e
}

// flow returns the flow on arc e.
func (g *graph) flow(e int) int { return int(g.arcs[e^1].cap) }

// index builds the adjacency lists (counting sort by tail, stable).
func (g *graph) index() {
	g.first = make([]int32, g.vertices+1)
	for _, a := range g.arcs {
		g.first[a.from+1]++
	}
	for v := range g.vertices {
		g.first[v+1] += g.first[v]
	}
	g.out = make([]int32, len(g.arcs))
	fill := slices.Clone(g.first[:g.vertices])
	for e, a := range g.arcs {
		g.out[fill[a.from]] = int32(e)
		fill[a.from]++
	}
}

func (g *graph) arcsOut(u int) []int32 { return g.out[g.first[u]:g.first[u+1]] }

// reduced returns the reduced cost of arc e.
func (g *graph) reduced(e int32) cost {
	a := &g.arcs[e]
	r := g.pot[a.from].sub(g.pot[a.to])
	switch p := a.price; {
	case p > 0:
		r[p-1]++
	case p < 0:
		r[-p-1]--
	}
	return r
}

// minCostFlow sends as much flow as possible from s to t at the least cost
// (primal-dual: Dijkstra on reduced costs, then a Dinic blocking flow on the
// arcs of zero reduced cost, until t is unreachable). The network must be
// acyclic when called, which is how the planner builds it; negative costs
// are allowed. Every step visits vertices and arcs in index order, so the
// result depends only on the order the network was built in.
func (g *graph) minCostFlow(s, t int) int {
	g.index()
	n := g.vertices
	g.pot = make([]cost, n)
	g.dist = make([]cost, n)
	g.seen = make([]bool, n)
	g.done = make([]bool, n)
	g.level = make([]int32, n)
	g.next = make([]int32, n)
	g.initPotentials(s)
	total := 0
	for g.dijkstra(s, t) {
		for g.levels(s, t) {
			clear(g.next)
			for {
				f := g.augment(s, t, 1<<30)
				if f == 0 {
					break
				}
				total += int(f)
			}
		}
	}
	return total
}

// initPotentials sets the potentials to shortest distances from s over the
// acyclic network (in topological order), so reduced costs start
// non-negative despite negative arc costs.
func (g *graph) initPotentials(s int) {
	n := g.vertices
	indeg := make([]int, n)
	for _, a := range g.arcs {
		if a.cap > 0 {
			indeg[a.to]++
		}
	}
	order := make([]int, 0, n)
	for v := range n {
		if indeg[v] == 0 {
			order = append(order, v)
		}
	}
	reach := make([]bool, n)
	reach[s] = true
	for i := 0; i < len(order); i++ {
		u := order[i]
		for _, e := range g.arcsOut(u) {
			a := &g.arcs[e]
			if a.cap <= 0 {
				continue
			}
			if reach[u] {
				if d := g.pot[u].add(a.price.cost()); !reach[a.to] || d.cmp(g.pot[a.to]) < 0 {
					g.pot[a.to] = d
					reach[a.to] = true
				}
			}
			if indeg[a.to]--; indeg[a.to] == 0 {
				order = append(order, int(a.to))
			}
		}
	}
	if len(order) != n {
		panic("placement: flow network has a cycle")
	}
}

// dijkstra computes shortest reduced distances from s, adds them to the
// potentials and reports whether t is reachable.
func (g *graph) dijkstra(s, t int) bool {
	clear(g.seen)
	clear(g.done)
	done := g.done
	h := heap{items: g.heap[:0]}
	var zero cost
	g.dist[s] = zero
	h.push(zero, s)
	var far cost
	for h.len() > 0 {
		d, u := h.pop()
		if done[u] {
			continue
		}
		done[u] = true
		far = d
		for _, e := range g.arcsOut(u) {
			a := &g.arcs[e]
			if a.cap <= 0 || done[a.to] {
				continue
			}
			nd := d.add(g.reduced(e))
			if !g.seen[a.to] || nd.cmp(g.dist[a.to]) < 0 {
				g.seen[a.to] = true
				g.dist[a.to] = nd
				h.push(nd, int(a.to))
			}
		}
	}
	g.heap = h.items
	if !done[t] {
		return false
	}
	// Unreachable vertices get the largest distance, which keeps every
	// residual arc's reduced cost non-negative.
	for v := range g.pot {
		if done[v] {
			g.pot[v] = g.pot[v].add(g.dist[v])
		} else {
			g.pot[v] = g.pot[v].add(far)
		}
	}
	return true
}

// admissible reports whether arc e has room and zero reduced cost.
func (g *graph) admissible(e int32) bool {
	return g.arcs[e].cap > 0 && g.reduced(e) == cost{}
}

// levels numbers the vertices by BFS depth from s over admissible arcs and
// reports whether t is reached.
func (g *graph) levels(s, t int) bool {
	for i := range g.level {
		g.level[i] = -1
	}
	g.level[s] = 0
	queue := []int{s}
	for i := 0; i < len(queue); i++ {
		u := queue[i]
		for _, e := range g.arcsOut(u) {
			v := g.arcs[e].to
			if g.level[v] < 0 && g.admissible(e) {
				g.level[v] = g.level[u] + 1
				queue = append(queue, int(v))
			}
		}
	}
	return g.level[t] >= 0
}

// augment pushes up to f units along one admissible level-increasing path.
func (g *graph) augment(u, t int, f int32) int32 {
	if u == t {
		return f
	}
	out := g.arcsOut(u)
	for ; int(g.next[u]) < len(out); g.next[u]++ {
		e := out[g.next[u]]
		v := int(g.arcs[e].to)
		if g.level[v] != g.level[u]+1 || !g.admissible(e) {
			continue
		}
		if d := g.augment(v, t, min(f, g.arcs[e].cap)); d > 0 {
			g.arcs[e].cap -= d
			g.arcs[e^1].cap += d
			return d
		}
	}
	return 0
}

// sortedKeys returns m's keys in order.
func sortedKeys[K ~string | ~int, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
