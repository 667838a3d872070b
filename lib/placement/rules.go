package placement

import (
	"math"
	"slices"
)

// cluster is the eligible nodes (UP, not draining), sorted by address, with
// what the rules need to know about their zones and racks.
type cluster struct {
	nodes []Node
	index map[string]int // eligible address -> position in nodes
	// zone and rack of nodes[i], as small integers (racks qualified by zone).
	zone, rack []int
	zones      int
	// rackZone[r] is the zone of rack r; zoneNodes and rackNodes count nodes.
	rackZone             []int
	zoneNodes, rackNodes []int
	weight               []float64
	totalWeight          float64
	caps                 map[int]groupCaps
}

// groupCaps says how many replicas of one partition a zone and a rack may
// hold. zone is the least c such that zones holding at most c replicas each
// can take all of them: 1 (distinct zones) when there are at least as many
// zones as replicas, otherwise the replicas spread as evenly as the zones'
// sizes allow. rack is the least such c given the zone cap.
type groupCaps struct{ zone, rack int }

func newCluster(all []Node) *cluster {
	c := &cluster{index: map[string]int{}, caps: map[int]groupCaps{}}
	for _, n := range all {
		if n.eligible() {
			c.nodes = append(c.nodes, n)
		}
	}
	slices.SortFunc(c.nodes, func(a, b Node) int { return compareStrings(a.Addr, b.Addr) })
	zoneID := map[string]int{}
	rackID := map[[2]string]int{}
	for i, n := range c.nodes {
		c.index[n.Addr] = i
		z, ok := zoneID[n.Zone]
		if !ok {
			z = len(zoneID)
			zoneID[n.Zone] = z
			c.zoneNodes = append(c.zoneNodes, 0)
		}
		r, ok := rackID[[2]string{n.Zone, n.Rack}]
		if !ok {
			r = len(rackID)
			rackID[[2]string{n.Zone, n.Rack}] = r
			c.rackNodes = append(c.rackNodes, 0)
			c.rackZone = append(c.rackZone, z)
		}
		c.zone = append(c.zone, z)
		c.rack = append(c.rack, r)
		c.zoneNodes[z]++
		c.rackNodes[r]++
		w := float64(max(n.Weight, 1))
		c.weight = append(c.weight, w)
		c.totalWeight += w
	}
	c.zones = len(zoneID)
	return c
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// capsFor returns the zone and rack caps for a partition of r replicas; r
// must be at most the number of eligible nodes.
func (c *cluster) capsFor(r int) groupCaps {
	if g, ok := c.caps[r]; ok {
		return g
	}
	var g groupCaps
	for g.zone = 1; ; g.zone++ {
		sum := 0
		for _, n := range c.zoneNodes {
			sum += min(n, g.zone)
		}
		if sum >= r {
			break
		}
	}
	perZone := make([]int, c.zones)
	for g.rack = 1; ; g.rack++ {
		clear(perZone)
		for rk, n := range c.rackNodes {
			perZone[c.rackZone[rk]] += min(n, g.rack)
		}
		sum := 0
		for _, n := range perZone {
			sum += min(n, g.zone)
		}
		if sum >= r {
			break
		}
	}
	c.caps[r] = g
	return g
}

// replicaShares returns each eligible node's share of a table's replicas
// whose partitions have the given replica counts: proportional to weight,
// except that no node, rack or zone is given more than the partitions' caps
// let it hold (one replica per partition for a node); what a capped node,
// rack or zone cannot take goes to the others, again by weight (weighted
// max-min fairness, "water-filling"). The shares sum to the table's replica
// count.
func (c *cluster) replicaShares(replicas []int) []float64 {
	nodeCap, zoneCap, rackCap, total := 0.0, 0.0, 0.0, 0.0
	for _, r := range replicas {
		if r == 0 {
			continue
		}
		g := c.capsFor(r)
		nodeCap++
		zoneCap += float64(g.zone)
		rackCap += float64(g.rack)
		total += float64(r)
	}
	shares := make([]float64, len(c.nodes))
	if total == 0 {
		return shares
	}
	// Fill level λ: an uncapped node gets λ×weight. Each group is filled to
	// the level that makes it take what its parent gives it.
	byZone := make([][]int, c.zones)
	racksOf := make([][]int, c.zones)
	byRack := make([][]int, len(c.rackNodes))
	for i := range c.nodes {
		byRack[c.rack[i]] = append(byRack[c.rack[i]], i)
		byZone[c.zone[i]] = append(byZone[c.zone[i]], i)
	}
	for rk, z := range c.rackZone {
		racksOf[z] = append(racksOf[z], rk)
	}
	rackTake := func(rk int, level float64) float64 {
		sum := 0.0
		for _, i := range byRack[rk] {
			sum += min(nodeCap, level*c.weight[i])
		}
		return min(rackCap, sum)
	}
	zoneTake := func(z int, level float64) float64 {
		sum := 0.0
		for _, rk := range racksOf[z] {
			sum += rackTake(rk, level)
		}
		return min(zoneCap, sum)
	}
	clusterTake := func(level float64) float64 {
		sum := 0.0
		for z := range c.zones {
			sum += zoneTake(z, level)
		}
		return sum
	}
	top := solveLevel(clusterTake, total, c.totalWeight)
	for z := range c.zones {
		zl := top
		if zoneTake(z, top) >= zoneCap {
			zl = solveLevel(func(l float64) float64 { return zoneTake(z, l) }, zoneCap, c.totalWeight)
		}
		for _, rk := range racksOf[z] {
			rl := zl
			if rackTake(rk, zl) >= rackCap {
				rl = solveLevel(func(l float64) float64 { return rackTake(rk, l) }, rackCap, c.totalWeight)
			}
			for _, i := range byRack[rk] {
				shares[i] = min(nodeCap, rl*c.weight[i])
			}
		}
	}
	return shares
}

// solveLevel returns the least fill level at which take (non-decreasing,
// continuous) reaches want, by bisection.
func solveLevel(take func(float64) float64, want, totalWeight float64) float64 {
	lo, hi := 0.0, want/totalWeight
	// The caps always leave room for want (see capsFor); the bound on the
	// doublings only guards against floating-point surprises.
	for i := 0; take(hi) < want && i < 200; i++ {
		hi *= 2
	}
	for range 100 {
		mid := lo + (hi-lo)/2
		if take(mid) < want {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// masterShares returns each eligible node's share of the masters of a table
// with the given partition count: proportional to weight.
func (c *cluster) masterShares(partitions int) []float64 {
	shares := make([]float64, len(c.nodes))
	for i, w := range c.weight {
		shares[i] = float64(partitions) * w / c.totalWeight
	}
	return shares
}

// eps absorbs floating-point error in shares that are whole numbers.
const eps = 1e-9

// band is the range of counts a node may have given its share:
// |count - share| <= slack, never narrower than the share rounded down and
// up.
type band struct{ lo, hi, coreLo, coreHi int }

func bandOf(share, slack float64) band {
	b := band{
		lo:     int(math.Ceil(share - slack - eps)),
		hi:     int(math.Floor(share + slack + eps)),
		coreLo: int(math.Floor(share + eps)),
		coreHi: int(math.Ceil(share - eps)),
	}
	b.lo = max(min(b.lo, b.coreLo), 0)
	b.hi = max(b.hi, b.coreHi)
	return b
}

func (b band) contains(n int) bool { return b.lo <= n && n <= b.hi }

// slack is the allowed distance of a replica or master count from its
// share: Tolerance×share, or 1 when that is larger. Masters follow the same
// rule as replicas so that a table with one replica per partition, whose
// masters are its replicas, can meet both.
func slack(share, tolerance float64) float64 { return max(tolerance*share, 1) }

// target returns the counter that prices a count with band b: a count now
// within the band may stay anywhere in it; one outside is brought to the
// core (the share rounded down or up), not merely to the band's edge, so
// that after an expand the cluster is even rather than 10% off and the next
// small change does not cross the edge again. Leaving the band costs level;
// missing the core when aiming at it costs lvlAim, which ranks below the
// rules so it never trades a rule away.
func (b band) target(now int, level int) counter {
	c := counter{lo: b.lo, aimLo: b.lo, coreLo: b.coreLo, coreHi: b.coreHi, aimHi: b.hi, hi: b.hi, level: level}
	if !b.contains(now) {
		c.aimLo, c.aimHi = b.coreLo, b.coreHi
	}
	return c
}

// core returns a counter whose band is the core.
func (b band) core(level int) counter {
	return counter{lo: b.coreLo, aimLo: b.coreLo, coreLo: b.coreLo, coreHi: b.coreHi, aimHi: b.coreHi, hi: b.coreHi, level: level}
}
