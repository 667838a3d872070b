package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// The list views (Nodes, Tables, Partitions, Migrations, Events) show
// their items filtered ('/': the rows whose text contains the filter,
// case-insensitively) and sorted ('o' sorts by the next column, 'O'
// reverses). The cursor counts rows as shown: item maps it back to the
// item the actions act on.

// sortKey is a column a list view sorts by.
type sortKey struct {
	name string
	// numeric columns sort largest first: the busiest node, the most
	// lagging partition on top.
	numeric bool
	cmp     func(i, j int) int
}

// sorting is how a view is sorted: by its column col-1 (0 for the
// view's own order), reversed or not.
type sorting struct {
	col     int
	reverse bool
}

// sortKeys are view t's sortable columns, comparing the items of its own
// order.
func (m *Model) sortKeys(t tab) []sortKey {
	if m.snap == nil {
		return nil
	}
	num := func(name string, f func(i int) float64) sortKey {
		return sortKey{name, true, func(i, j int) int { return cmp.Compare(f(i), f(j)) }}
	}
	text := func(name string, f func(i int) string) sortKey {
		return sortKey{name, false, func(i, j int) int { return cmp.Compare(f(i), f(j)) }}
	}
	switch t {
	case tabNodes:
		loads := m.snap.Loads("")
		n := m.snap.Nodes
		return []sortKey{
			text("ADDR", func(i int) string { return n[i].Addr }),
			text("STATE", func(i int) string { return n[i].State }),
			text("ZONE/RACK", func(i int) string { return n[i].Zone + "/" + n[i].Rack }),
			num("REPL", func(i int) float64 { return float64(loads[i].Replicas) }),
			num("MAST", func(i int) float64 { return float64(loads[i].Masters) }),
			num("QPS", func(i int) float64 { return loads[i].QPS }),
			num("DISK", func(i int) float64 { return float64(loads[i].UsedBytes) }),
		}
	case tabTables:
		tables := m.snapTables()
		qps := make([]float64, len(tables))
		used := make([]float64, len(tables))
		for i, tb := range tables {
			for _, l := range m.snap.Loads(tb.Name) {
				qps[i] += l.QPS
				used[i] += float64(l.UsedBytes)
			}
		}
		return []sortKey{
			text("NAME", func(i int) string { return tables[i].Name }),
			num("PARTITIONS", func(i int) float64 { return float64(tables[i].PartitionCount) }),
			num("QPS", func(i int) float64 { return qps[i] }),
			num("USED", func(i int) float64 { return used[i] }),
		}
	case tabPartitions:
		tb, ok := m.snap.Table(m.table)
		if !ok {
			return nil
		}
		ps := tb.Partitions
		lag := make([]float64, len(ps))
		for i, p := range ps {
			for _, r := range m.snap.Replicas(tb, p) {
				lag[i] = max(lag[i], float64(r.Lag))
			}
		}
		return []sortKey{
			num("P", func(i int) float64 { return float64(ps[i].ID) }),
			text("STATE", func(i int) string { return ps[i].State }),
			num("TERM", func(i int) float64 { return float64(ps[i].Term) }),
			text("MASTER", func(i int) string { return ps[i].Master }),
			num("LAG", func(i int) float64 { return lag[i] }),
		}
	case tabSlowlog:
		if m.slow == nil {
			return nil
		}
		e := m.slow.Entries
		return []sortKey{
			num("TIME", func(i int) float64 { return float64(e[i].Time.UnixNano()) }),
			text("NODE", func(i int) string { return e[i].Node }),
			text("COMMAND", func(i int) string { return e[i].Command }),
			text("TABLE", func(i int) string { return e[i].Table }),
			num("DURATION", func(i int) float64 { return float64(e[i].Duration) }),
			text("CODE", func(i int) string { return e[i].Code }),
		}
	case tabMigrations:
		mv := m.migrations
		return []sortKey{
			num("ID", func(i int) float64 { return float64(mv[i].ID) }),
			text("PARTITION", func(i int) string { return fmt.Sprintf("%s/%09d", mv[i].Table, mv[i].Partition) }),
			text("KIND", func(i int) string { return string(mv[i].Kind) }),
			text("STATE", func(i int) string { return string(mv[i].State) }),
		}
	}
	return nil
}

// itemCount is how many items view t has, unfiltered.
func (m *Model) itemCount(t tab) int {
	if m.snap == nil {
		return 0
	}
	switch t {
	case tabNodes:
		return len(m.snap.Nodes)
	case tabTables:
		return len(m.snap.Tables())
	case tabPartitions:
		if tb, ok := m.snap.Table(m.table); ok {
			return len(tb.Partitions)
		}
	case tabMigrations:
		return len(m.migrations)
	case tabEvents:
		return len(m.eventLines())
	case tabSlowlog:
		if m.slow != nil {
			return len(m.slow.Entries)
		}
	case tabLog:
		if m.nodeLog != nil {
			return len(m.nodeLog.Lines)
		}
	}
	return 0
}

// itemText is what the filter of view t matches item i against.
func (m *Model) itemText(t tab, i int) string {
	switch t {
	case tabNodes:
		n := m.snap.Nodes[i]
		return strings.Join([]string{n.Addr, n.State, n.Zone + "/" + n.Rack, n.RedisAddr}, " ")
	case tabTables:
		return m.snapTables()[i].Name
	case tabPartitions:
		tb, _ := m.snap.Table(m.table)
		p := tb.Partitions[i]
		parts := []string{fmt.Sprint(p.ID), p.State, p.Master}
		for _, r := range m.snap.Replicas(tb, p) {
			parts = append(parts, r.Addr, r.State, r.Error)
		}
		return strings.Join(append(parts, p.Slaves...), " ")
	case tabMigrations:
		mv := m.migrations[i]
		return fmt.Sprintf("%d %s/%d %s %s %s %s %s %s", mv.ID, mv.Table, mv.Partition, mv.Kind, mv.From, mv.To, mv.State, mv.Origin, mv.Error)
	case tabEvents:
		return m.eventLines()[i]
	case tabSlowlog:
		e := m.slow.Entries[i]
		return strings.Join([]string{e.Node, e.Command, e.Table, e.Key, e.Code}, " ")
	case tabLog:
		l := m.nodeLog.Lines[i]
		return strings.Join([]string{l.Level, l.Message, l.Attrs}, " ")
	}
	return ""
}

// order is the items view t shows, in the order shown: those its filter
// matches, sorted as asked.
func (m *Model) order(t tab) []int {
	n := m.itemCount(t)
	out := make([]int, 0, n)
	f := strings.ToLower(m.filter[t])
	for i := range n {
		if f == "" || strings.Contains(strings.ToLower(m.itemText(t, i)), f) {
			out = append(out, i)
		}
	}
	s := m.sorting[t]
	var keys []sortKey
	if s.col > 0 {
		// Only when sorted: some keys cost a pass over every replica.
		keys = m.sortKeys(t)
	}
	if s.col == 0 || s.col > len(keys) {
		if s.reverse {
			slices.Reverse(out)
		}
		return out
	}
	k := keys[s.col-1]
	desc := k.numeric != s.reverse
	slices.SortStableFunc(out, func(i, j int) int {
		c := k.cmp(i, j)
		if desc {
			c = -c
		}
		return c
	})
	return out
}

// item is the item under view t's cursor, in the view's own order.
func (m *Model) item(t tab) (int, bool) {
	o := m.order(t)
	if c := m.cursor[t]; c >= 0 && c < len(o) {
		return o[c], true
	}
	return 0, false
}

// rowOf is the row view t shows item i on, or -1 when filtered out.
func (m *Model) rowOf(t tab, i int) int {
	return slices.Index(m.order(t), i)
}

// sortLabel marks the header of the column view t is sorted by: "QPS▼".
func (m *Model) sortLabel(t tab, header []string) []string {
	s := m.sorting[t]
	if s.col == 0 {
		return header
	}
	keys := m.sortKeys(t)
	if s.col > len(keys) {
		return header
	}
	k := keys[s.col-1]
	arrow := "▲"
	if k.numeric != s.reverse {
		arrow = "▼"
	}
	out := slices.Clone(header)
	for i, h := range out {
		if h == k.name || strings.HasPrefix(h, k.name+" ") {
			out[i] = k.name + arrow + strings.TrimPrefix(h, k.name)
		}
	}
	return out
}

// cycleSort sorts view t by its next column, after the last back to its
// own order.
func (m *Model) cycleSort(t tab) {
	n := len(m.sortKeys(t))
	if n == 0 {
		return
	}
	m.sorting[t] = sorting{col: (m.sorting[t].col + 1) % (n + 1)}
}

// movesOrder is the migrations panel's moves in the order shown.
func (m *Model) movesOrder() []client.Move {
	var out []client.Move
	for _, i := range m.order(tabMigrations) {
		out = append(out, m.migrations[i])
	}
	return out
}
