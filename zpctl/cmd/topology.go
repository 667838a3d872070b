package cmd

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// The topology-changing commands. Each is registered with its real
// arguments and flags, its planner where the plan follows from the
// topology alone, and a nil step: it exits 9 (ErrUnsupported) saying what
// is missing. The meta servers gained the move requests (SET_MASTER,
// ADD_SLAVE, REMOVE_SLAVE, MIGRATE, REBALANCE, CANCEL_MOVE, MOVE_STATUS,
// REMOVE_NODES; lib/client/moves.go) while these commands were written;
// wiring one up is the client call in its step function, and a progress
// loop on MoveStatus. Raft membership, table flush and quotas have no
// request at all yet.

// Why each command is not supported yet.
const (
	whySetMaster   = "zpctl does not drive the meta servers' SET_MASTER request yet"
	whyAddSlave    = "zpctl does not drive the meta servers' ADD_SLAVE request yet"
	whyRemoveSlave = "zpctl does not drive the meta servers' REMOVE_SLAVE request yet"
	whyMigrate     = "zpctl does not drive the meta servers' MIGRATE, MOVE_STATUS and CANCEL_MOVE requests yet"
	whyExpand      = "zpctl does not drive the meta servers' REBALANCE request yet"
	whyReplace     = "zpctl does not drive the meta servers' REBALANCE (REPLACE) request yet"
	whyMetaMember  = "the meta servers have no request to change the Raft membership (ADD_META, REMOVE_META)"
	whyNodeRemove  = "zpctl does not drive the meta servers' REMOVE_NODES request yet"
	whyFlush       = "the nodes have no request to empty a table (FLUSH_TABLE)"
	whyQuota       = "tables have no quota in the topology, and the meta servers no request to set one (SET_QUOTA)"
)

func (a *app) topologyCommands() []*cobra.Command {
	return []*cobra.Command{
		a.migrateCommand(),
		a.partitionOpCommand("setmaster", "Make a slave the master of a partition (manual failover)", whySetMaster, planSetMaster),
		a.partitionOpCommand("addslave", "Add a slave of a partition on a node", whyAddSlave, planAddSlave),
		a.partitionOpCommand("removeslave", "Remove a slave of a partition from a node", whyRemoveSlave, planRemoveSlave),
		a.nodesOpCommand("expand", "Move replicas onto new nodes until the load is even", whyExpand),
		a.nodesOpCommand("shrink", "Move every replica off nodes, so they can be removed", whyExpand),
		a.replaceNodeCommand(),
	}
}

// partitionPlanner plans a change of one partition to node addr.
type partitionPlanner func(topo *client.Topology, table string, partition uint32, addr string) (*Plan, error)

// partitionOpCommand is `NAME TABLE PARTITION ADDR`.
func (a *app) partitionOpCommand(name, short, why string, planner partitionPlanner) *cobra.Command {
	var ro runOptions
	cmd := &cobra.Command{
		Use:   name + " TABLE PARTITION ADDR",
		Short: short,
		Long: short + `.

The plan is shown first; it runs after --yes or a "y" on a terminal.
Not supported yet (exit 9): ` + why + `.`,
		Args:              cobra.ExactArgs(3),
		ValidArgsFunction: a.completeTableThenNodes(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := parsePartition(args[1])
			if err != nil {
				return err
			}
			return a.runOperation(cmd, operation{
				name: name,
				why:  why,
				plan: func(ctx context.Context, c *client.Client) (*Plan, error) {
					topo, err := c.Pull(ctx, "")
					if err != nil {
						return nil, err
					}
					return planner(topo, args[0], pid, args[2])
				},
			}, ro)
		},
	}
	ro.register(cmd)
	return cmd
}

func parsePartition(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, usagef("partition %q is not a number", s)
	}
	return uint32(n), nil
}

func (a *app) migrateCommand() *cobra.Command {
	var (
		ro       runOptions
		from, to string
	)
	cmd := &cobra.Command{
		Use:   "migrate TABLE PARTITION --from ADDR --to ADDR",
		Short: "Move a replica of a partition to another node",
		Long: `Move the replica of a partition on --from to --to: --to is added as a slave,
catches up, the partition goes SLOWDOWN then STUCK for the hand-over, and
--from is removed (if it was the master, --to becomes master). 'migrate
status' shows running migrations and 'migrate cancel' stops one.

Not supported yet (exit 9): ` + whyMigrate + `.`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeTableThenNodes(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := parsePartition(args[1])
			if err != nil {
				return err
			}
			if from == "" || to == "" {
				return usagef("migrate needs --from and --to")
			}
			return a.runOperation(cmd, operation{
				name: "migrate",
				why:  whyMigrate,
				plan: func(ctx context.Context, c *client.Client) (*Plan, error) {
					topo, err := c.Pull(ctx, "")
					if err != nil {
						return nil, err
					}
					return planMove(topo, args[0], pid, from, to)
				},
			}, ro)
		},
	}
	ro.register(cmd)
	cmd.Flags().StringVar(&from, "from", "", "node that holds the replica now")
	cmd.Flags().StringVar(&to, "to", "", "node to move it to")
	cmd.RegisterFlagCompletionFunc("from", a.completeNodes)
	cmd.RegisterFlagCompletionFunc("to", a.completeNodes)
	cmd.AddCommand(
		&cobra.Command{
			Use:   "status",
			Short: "Show running migrations and their progress",
			Long:  "Not supported yet (exit 9): " + whyMigrate + ".",
			Args:  cobra.NoArgs,
			RunE:  a.unsupportedRunE("migrate status", whyMigrate),
		},
		&cobra.Command{
			Use:   "cancel TABLE PARTITION",
			Short: "Stop a running migration and return the partition to ACTIVE",
			Long:  "Not supported yet (exit 9): " + whyMigrate + ".",
			Args:  cobra.ExactArgs(2),
			RunE:  a.unsupportedRunE("migrate cancel", whyMigrate),
		},
	)
	return cmd
}

// nodesOpCommand is `NAME ADDR...`: expand and shrink.
func (a *app) nodesOpCommand(name, short, why string) *cobra.Command {
	var (
		ro       runOptions
		table    string
		maxMoves int
	)
	cmd := &cobra.Command{
		Use:   name + " ADDR...",
		Short: short,
		Long: short + `. The plan (replicas in distinct zones and racks,
masters balanced) is shown first and runs as migrations, --max-moves at a
time, after --yes or a "y" on a terminal.

Not supported yet (exit 9): ` + why + `.`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: a.completeNodes,
		RunE: func(cmd *cobra.Command, args []string) error {
			if maxMoves < 1 {
				return usagef("--max-moves must be at least 1")
			}
			return a.runOperation(cmd, operation{name: name, why: why}, ro)
		},
	}
	ro.register(cmd)
	cmd.Flags().StringVar(&table, "table", "", "only move replicas of this table")
	cmd.Flags().IntVar(&maxMoves, "max-moves", 2, "migrations running at once")
	return cmd
}

func (a *app) replaceNodeCommand() *cobra.Command {
	var ro runOptions
	cmd := &cobra.Command{
		Use:   "replace-node OLD NEW",
		Short: "Move every replica of node OLD to node NEW",
		Long: `Move every replica on OLD to NEW, keeping each partition's master where it
was (NEW takes over OLD's masters). The plan is shown first; it runs after
--yes or a "y" on a terminal.

Not supported yet (exit 9): ` + whyReplace + `.`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeNodes,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runOperation(cmd, operation{
				name: "replace-node",
				why:  whyReplace,
				plan: func(ctx context.Context, c *client.Client) (*Plan, error) {
					topo, err := c.Pull(ctx, "")
					if err != nil {
						return nil, err
					}
					return planReplaceNode(topo, args[0], args[1])
				},
			}, ro)
		},
	}
	ro.register(cmd)
	return cmd
}

// unsupportedRunE is the RunE of a command the cluster cannot run yet.
func (a *app) unsupportedRunE(name, why string) func(*cobra.Command, []string) error {
	return func(*cobra.Command, []string) error {
		return &cmdFailed{unsupported(name, why)}
	}
}

// The planners check the request against the topology, so that a plan
// shown to the operator can be carried out as it is.

func invalid(format string, args ...any) error {
	return status.New(zppb.Code_INVALID_ARGUMENT, format, args...)
}

// findPartition returns partition id of table.
func findPartition(topo *client.Topology, table string, id uint32) (client.Partition, error) {
	for _, tb := range topo.Tables {
		if tb.Name != table {
			continue
		}
		for _, p := range tb.Partitions {
			if p.ID == id {
				return p, nil
			}
		}
		return client.Partition{}, invalid("table %s has no partition %d (it has %d)", table, id, tb.PartitionCount)
	}
	return client.Partition{}, status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found", table)
}

// upNode checks that addr is a node of the topology and UP.
func upNode(topo *client.Topology, addr string) error {
	for _, n := range topo.Nodes {
		if n.Addr == addr {
			if n.State != "UP" {
				return invalid("node %s is %s", addr, n.State)
			}
			return nil
		}
	}
	return status.New(zppb.Code_NODE_NOT_FOUND, "node %s is not in the cluster", addr)
}

func holds(p client.Partition, addr string) bool {
	return p.Master == addr || slices.Contains(p.Slaves, addr)
}

func onePlan(op string, topo *client.Topology, s PlanStep) *Plan {
	return &Plan{Operation: op, Epoch: topo.Epoch, Steps: []PlanStep{s}}
}

func planSetMaster(topo *client.Topology, table string, id uint32, addr string) (*Plan, error) {
	p, err := findPartition(topo, table, id)
	if err != nil {
		return nil, err
	}
	if p.Master == addr {
		return nil, invalid("%s is already the master of %s/%d", addr, table, id)
	}
	if !slices.Contains(p.Slaves, addr) {
		return nil, invalid("%s is not a slave of %s/%d (slaves: %v)", addr, table, id, p.Slaves)
	}
	if err := upNode(topo, addr); err != nil {
		return nil, err
	}
	return onePlan("setmaster", topo, PlanStep{Action: "setmaster", Table: table, Partition: id, From: p.Master, To: addr}), nil
}

func planAddSlave(topo *client.Topology, table string, id uint32, addr string) (*Plan, error) {
	p, err := findPartition(topo, table, id)
	if err != nil {
		return nil, err
	}
	if holds(p, addr) {
		return nil, invalid("%s already holds %s/%d", addr, table, id)
	}
	if err := upNode(topo, addr); err != nil {
		return nil, err
	}
	return onePlan("addslave", topo, PlanStep{Action: "addslave", Table: table, Partition: id, To: addr}), nil
}

func planRemoveSlave(topo *client.Topology, table string, id uint32, addr string) (*Plan, error) {
	p, err := findPartition(topo, table, id)
	if err != nil {
		return nil, err
	}
	if p.Master == addr {
		return nil, invalid("%s is the master of %s/%d: setmaster another node first", addr, table, id)
	}
	if !slices.Contains(p.Slaves, addr) {
		return nil, invalid("%s is not a slave of %s/%d", addr, table, id)
	}
	return onePlan("removeslave", topo, PlanStep{Action: "removeslave", Table: table, Partition: id, From: addr}), nil
}

func planMove(topo *client.Topology, table string, id uint32, from, to string) (*Plan, error) {
	p, err := findPartition(topo, table, id)
	if err != nil {
		return nil, err
	}
	if !holds(p, from) {
		return nil, invalid("%s does not hold %s/%d", from, table, id)
	}
	if holds(p, to) {
		return nil, invalid("%s already holds %s/%d", to, table, id)
	}
	if err := upNode(topo, to); err != nil {
		return nil, err
	}
	return onePlan("migrate", topo, PlanStep{Action: "move", Table: table, Partition: id, From: from, To: to}), nil
}

func planReplaceNode(topo *client.Topology, old, repl string) (*Plan, error) {
	if old == repl {
		return nil, invalid("OLD and NEW are the same node")
	}
	if err := upNode(topo, repl); err != nil {
		return nil, err
	}
	known := false
	for _, n := range topo.Nodes {
		known = known || n.Addr == old
	}
	if !known {
		return nil, status.New(zppb.Code_NODE_NOT_FOUND, "node %s is not in the cluster", old)
	}
	plan := &Plan{Operation: "replace-node", Epoch: topo.Epoch}
	tables := slices.Clone(topo.Tables)
	slices.SortFunc(tables, func(a, b client.Table) int { return cmp.Compare(a.Name, b.Name) })
	for _, tb := range tables {
		for _, p := range tb.Partitions {
			if !holds(p, old) {
				continue
			}
			if holds(p, repl) {
				return nil, invalid("%s/%d has replicas on both %s and %s", tb.Name, p.ID, old, repl)
			}
			plan.Steps = append(plan.Steps, PlanStep{Action: "move", Table: tb.Name, Partition: p.ID, From: old, To: repl})
		}
	}
	if len(plan.Steps) == 0 {
		return nil, invalid("node %s holds no replica: nothing to move", old)
	}
	return plan, nil
}

// String makes a Plan readable in test failures.
func (p *Plan) String() string { return fmt.Sprintf("%s@%d%v", p.Operation, p.Epoch, p.Steps) }
