package health

import (
	"fmt"
	"strings"
)

// scheduler reports what the meta leader's scheduler leaves unfixed:
// under-replicated partitions it cannot repair or is paused over, and a
// master imbalance with master balance off or paused. What it is fixing
// (repairs in flight, a DOWN node before its down-timeout) is not a
// finding of its own: node_down and replica_count say it already.
func (c *checker) scheduler() {
	st := c.s.Schedule
	if st == nil {
		return
	}
	short, imbalance := len(st.UnderReplicated), st.MasterImbalance
	// Paused is an operator's choice (the playbooks pause it while they
	// drain and restart nodes, which skews masters on purpose): only
	// replicas missing meanwhile make it a warning.
	switch {
	case st.Settings.Paused && short > 0:
		c.add(Problem{Severity: Warning, Check: CheckScheduler,
			Message: fmt.Sprintf("the scheduler is paused with %d partition(s) under-replicated (zpctl schedule resume)", short)})
	case st.Settings.Paused:
		c.add(Problem{Severity: Info, Check: CheckScheduler,
			Message: fmt.Sprintf("the scheduler is paused: nothing is repaired or balanced on its own, %d switchover(s) of master imbalance wait (zpctl schedule resume)", imbalance)})
	case short > 0 && strings.Contains(st.Doing, "not repairable"):
		c.add(Problem{Severity: Warning, Check: CheckScheduler, Message: st.Doing})
	case imbalance > 0 && !st.Settings.MasterBalance:
		c.add(Problem{Severity: Warning, Check: CheckScheduler,
			Message: fmt.Sprintf("masters are imbalanced (%d switchover(s) would fix it) and master balance is off (zpctl schedule set master-balance on, or zpctl expand)", imbalance)})
	}
}
