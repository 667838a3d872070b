package health

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// meta checks the Raft group: every member answers, a majority of voters
// is reachable, all name the same leader and have applied the same epoch.
func (c *checker) meta() {
	st := c.s.Meta
	if st == nil {
		return
	}
	voters, reachableVoters := 0, 0
	leaders := map[string][]string{} // leader seen -> members
	epochs := map[uint64][]string{}
	for _, m := range st.Members {
		c.sum.MetaMembers++
		// A configured address the Raft configuration does not list
		// (Suffrage "") is no voter: it is reported unreachable or odd,
		// but does not count toward the quorum.
		voter := m.Suffrage == "voter"
		if voter {
			voters++
		}
		if !m.Reachable {
			c.add(Problem{Severity: Warning, Check: CheckMetaUnreachable, Node: m.Addr,
				Message: fmt.Sprintf("meta server %s does not answer: %s", m.Addr, m.Error)})
			continue
		}
		c.sum.MetaReachable++
		if voter {
			reachableVoters++
		}
		leaders[m.LeaderSeen] = append(leaders[m.LeaderSeen], m.Addr)
		epochs[m.Epoch] = append(epochs[m.Epoch], m.Addr)
	}
	if c.sum.MetaReachable == 0 {
		c.add(Problem{Severity: Critical, Check: CheckMetaQuorum, Message: "no meta server answers"})
		return
	}
	if voters > 0 && reachableVoters <= voters/2 {
		c.add(Problem{Severity: Critical, Check: CheckMetaQuorum,
			Message: fmt.Sprintf("only %d of %d meta voters answer: no quorum, topology changes and failover are impossible", reachableVoters, voters)})
	}
	switch {
	case st.Leader == "" || (len(leaders) == 1 && leaders[""] != nil):
		c.add(Problem{Severity: Critical, Check: CheckMetaLeader, Message: "the meta group has no leader"})
	case len(leaders) > 1:
		c.add(Problem{Severity: Critical, Check: CheckMetaLeader,
			Message: "meta servers disagree on the leader: " + describeSplit(leaders)})
	}
	lagging := false
	for e := range epochs {
		lagging = lagging || c.behind(e)
	}
	if len(epochs) > 1 && lagging {
		c.add(Problem{Severity: Warning, Check: CheckMetaEpoch,
			Message: "meta servers report different epochs: " + describeSplit(epochs)})
	}
}

// behind reports whether a member or node at epoch has not yet applied what
// it must have by now: Options.SettledEpoch when set (a change younger than
// the grace is still on its way), else the newest epoch seen.
func (c *checker) behind(epoch uint64) bool {
	if c.opts.SettledEpoch != 0 {
		return epoch < c.opts.SettledEpoch
	}
	return epoch < c.s.Epoch()
}

// versions checks that every node and meta server runs the same version:
// mixed versions are a warning, or info while Options.Upgrading. Those
// whose version is unknown (not answering, or too old to say) are left out.
func (c *checker) versions() {
	byVersion := map[string][]string{}
	if c.s.Meta != nil {
		for _, m := range c.s.Meta.Members {
			if m.Reachable && m.Version != "" {
				byVersion[m.Version] = append(byVersion[m.Version], "meta "+m.Addr)
			}
		}
	}
	for _, n := range c.s.Nodes {
		if v := n.RunningVersion(); v != "" {
			byVersion[v] = append(byVersion[v], "node "+n.Addr)
		}
	}
	if len(byVersion) < 2 {
		return
	}
	p := Problem{Severity: Warning, Check: CheckVersionMixed,
		Message: "versions differ (if an upgrade is in progress, say so with --upgrading): " + describeSplit(byVersion)}
	if c.opts.Upgrading {
		p.Severity, p.Message = Info, "upgrade in progress, versions differ: "+describeSplit(byVersion)
	}
	c.add(p)
}

// describeSplit renders "a: m1, m2; b: m3" in a stable order.
func describeSplit[K comparable](groups map[K][]string) string {
	var parts []string
	for k, members := range groups {
		v := fmt.Sprint(k)
		if v == "" {
			v = "(none)"
		}
		slices.Sort(members)
		parts = append(parts, fmt.Sprintf("%s per %s", v, strings.Join(members, ", ")))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// nodes checks each node: UP, answering, on the meta servers' epoch.
func (c *checker) nodes() {
	epoch := c.s.Topology.Epoch
	if c.s.Meta != nil {
		epoch = max(epoch, c.s.Meta.Epoch)
	}
	for _, n := range c.s.Nodes {
		c.sum.Nodes++
		if n.State != "UP" {
			c.add(Problem{Severity: Critical, Check: CheckNodeDown, Node: n.Addr,
				Message: fmt.Sprintf("node %s is %s (last heartbeat %s)%s", n.Addr, n.State, heartbeat(n.Node, c.s), starting(n.Node))})
			continue
		}
		c.sum.NodesUp++
		// Cordoned for maintenance is not a fault, but a cordon forgotten
		// after it keeps the node out of every placement.
		if n.Cordoned {
			c.add(Problem{Severity: Info, Check: CheckNodeCordoned, Node: n.Addr,
				Message: fmt.Sprintf("node %s is cordoned: it receives no new replica or master (zpctl node uncordon)", n.Addr)})
		}
		if n.Err != nil {
			c.add(Problem{Severity: Critical, Check: CheckNodeUnreachable, Node: n.Addr,
				Message: fmt.Sprintf("node %s is UP for meta but does not answer INFO: %v%s", n.Addr, n.Err, starting(n.Node))})
			continue
		}
		// A node ahead of the survey's epoch saw a change the survey's
		// meta answer predates: only strict checks report it.
		if si := n.Info.Server; si != nil && (si.Epoch < epoch && c.behind(si.Epoch) || si.Epoch > epoch && c.opts.SettledEpoch == 0) {
			msg := fmt.Sprintf("node %s applied epoch %d, meta is at %d", n.Addr, si.Epoch, epoch)
			if c.opts.SettledEpoch != 0 && c.opts.SettledEpoch < epoch {
				msg += fmt.Sprintf(" (and was at %d a grace period ago)", c.opts.SettledEpoch)
			}
			c.add(Problem{Severity: Warning, Check: CheckNodeEpoch, Node: n.Addr, Message: msg})
		}
	}
}

func heartbeat(n client.Node, s *survey.Snapshot) string {
	at := n.LastHeartbeat()
	if at.IsZero() {
		return "unknown"
	}
	return s.Taken.Sub(at).Round(100*time.Millisecond).String() + " ago"
}

// starting says how far a node that does not answer got in starting, if
// it is (survey.Options.Starting).
func starting(n client.Node) string {
	if n.Starting == nil {
		return ""
	}
	return "; starting: " + survey.StartupText(*n.Starting)
}
