package placement

import "fmt"

// Node is a data server as the planner sees it.
type Node struct {
	Addr string
	Zone string
	// Rack is qualified by Zone: racks of the same name in two zones are
	// two racks. Nodes without a rack share the zone's unnamed rack.
	Rack string
	// Weight is the node's relative capacity; 0 counts as 1, the weight
	// the meta server gives a node that reports none.
	Weight uint32
	// Up is false for a DOWN node: it takes no replicas and the ones it has
	// move away.
	Up bool
	// Draining marks a node being removed (shrink) or replaced: it takes no
	// replicas and the ones it has move away.
	Draining bool
}

// eligible reports whether n may hold replicas.
func (n Node) eligible() bool { return n.Up && !n.Draining }

// Replicas is one partition's layout: the master and its slaves, all
// distinct nodes. A partition's replica count is 1+len(Slaves); the planner
// keeps it.
type Replicas struct {
	Master string
	Slaves []string
}

// Table is a table's layout; Partitions[i] is partition i.
type Table struct {
	Name       string
	Partitions []Replicas
}

// Move moves one replica of a partition from node From to node To. The
// replica keeps its role: when From is the master, To is the master once the
// move has handed over.
type Move struct {
	Table     string
	Partition uint32
	From, To  string
}

func (m Move) String() string {
	return fmt.Sprintf("%s/%d %s->%s", m.Table, m.Partition, m.From, m.To)
}

// MasterMove is a planned switchover of a partition's master to To, a node
// that holds a replica of it once the partition's Moves are done.
type MasterMove struct {
	Table     string
	Partition uint32
	To        string
}

func (m MasterMove) String() string {
	return fmt.Sprintf("%s/%d master->%s", m.Table, m.Partition, m.To)
}

// Plan takes a layout to Target: the Moves first, then the MasterMoves (see
// Apply for the exact semantics). Moves and MasterMoves are sorted by table,
// partition and node; Target holds every table, sorted by name.
type Plan struct {
	Moves       []Move
	MasterMoves []MasterMove
	Target      []Table
}

// DefaultTolerance is the Tolerance of the zero Options.
const DefaultTolerance = 0.10

// Options tune Rebalance and Check.
type Options struct {
	// Tolerance is how far, relative to its share, a node's replica or
	// master count may be from its share: |count - share| <=
	// max(Tolerance×share, 1). 0 means DefaultTolerance; a tiny value such
	// as 1e-9 asks for the share rounded down or up.
	Tolerance float64
}

func (o Options) tolerance() float64 {
	if o.Tolerance == 0 {
		return DefaultTolerance
	}
	return o.Tolerance
}
