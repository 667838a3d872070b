package tui

import (
	"math"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// historyLen is how many surveys a sparkline spans.
const historyLen = 30

// throughput keeps, for each node and each table, the operations per
// second between consecutive surveys, from the nodes' operation counters
// (INFO stats, which every survey has): the sparklines of the Nodes and
// Tables views. NaN marks an interval a node did not answer in, or
// restarted (its counters went back).
type throughput struct {
	prevAt  time.Time
	prevOps map[opsKey]uint64
	nodes   map[string][]float64
	tables  map[string][]float64
}

type opsKey struct{ node, table string }

func newThroughput() *throughput {
	return &throughput{nodes: map[string][]float64{}, tables: map[string][]float64{}}
}

// observe takes in a survey.
func (h *throughput) observe(s *survey.Snapshot) {
	ops := map[opsKey]uint64{}
	for _, n := range s.Nodes {
		for _, st := range n.Info.Stats {
			ops[opsKey{n.Addr, st.Table}] = st.Ops
		}
	}
	secs := s.Taken.Sub(h.prevAt).Seconds()
	if h.prevOps != nil && secs > 0 {
		node, table := map[string]float64{}, map[string]float64{}
		for k, now := range ops {
			prev, ok := h.prevOps[k]
			if !ok {
				continue
			}
			r := math.NaN()
			if now >= prev {
				r = float64(now-prev) / secs
			}
			node[k.node] += r
			table[k.table] += r
		}
		for _, n := range s.Nodes {
			v, ok := node[n.Addr]
			if !ok {
				v = math.NaN()
			}
			h.nodes[n.Addr] = push(h.nodes[n.Addr], v)
		}
		for _, tb := range s.Tables() {
			v, ok := table[tb.Name]
			if !ok {
				v = math.NaN()
			}
			h.tables[tb.Name] = push(h.tables[tb.Name], v)
		}
	}
	h.prevAt, h.prevOps = s.Taken, ops
}

func push(s []float64, v float64) []float64 {
	s = append(s, v)
	if len(s) > historyLen {
		s = s[len(s)-historyLen:]
	}
	return s
}

// sparkBlocks are a sparkline's eight heights.
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws vs, scaled to their largest, one cell each; a NaN is
// a blank.
func sparkline(vs []float64) string {
	top := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) {
			top = max(top, v)
		}
	}
	var b strings.Builder
	for _, v := range vs {
		switch {
		case math.IsNaN(v):
			b.WriteRune(' ')
		case top <= 0:
			b.WriteRune(sparkBlocks[0])
		default:
			i := int(math.Ceil(v/top*float64(len(sparkBlocks)))) - 1
			b.WriteRune(sparkBlocks[max(min(i, len(sparkBlocks)-1), 0)])
		}
	}
	return b.String()
}

// last is the newest value of vs that is a number.
func last(vs []float64) (float64, bool) {
	for i := len(vs) - 1; i >= 0; i-- {
		if !math.IsNaN(vs[i]) {
			return vs[i], true
		}
	}
	return 0, false
}
