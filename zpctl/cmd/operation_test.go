package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/client/clienttest"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// opRun runs op through runOperation as a command of its own would, and
// returns the exit code, stdout, stderr and the steps executed.
func opRun(t *testing.T, cl *clienttest.Cluster, op operation, ro runOptions, format output.Format, stdin string, terminal bool) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{
		env: Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
			Getenv: func(string) string { return "" }, IsTerminal: func() bool { return terminal }},
		meta:    strings.Join(cl.MetaAddrs(), ","),
		timeout: 5 * time.Second,
	}
	a.printer = &output.Printer{W: &stdout, Format: format}
	cmd := &cobra.Command{Use: op.name}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd.SetContext(ctx)
	err := a.runOperation(cmd, op, ro)
	var failed *cmdFailed
	if errors.As(err, &failed) {
		err = failed.err
	}
	code := ExitCode(err)
	if err != nil {
		stderr.WriteString("ERR: " + err.Error() + "\n")
	}
	return code, stdout.String(), stderr.String()
}

func TestRunOperation(t *testing.T) {
	cl := clienttest.NewCluster(t, 1, 3)
	cl.AddTable("t", 3)
	var done []string
	// replace-node's planner, and a step that records what it is asked.
	op := func(failAt int) operation {
		return operation{
			name: "replace-node",
			plan: func(ctx context.Context, c *client.Client) (*Plan, error) {
				topo, err := c.Pull(ctx, "")
				if err != nil {
					return nil, err
				}
				return planReplaceNode(topo, cl.Nodes[0].Addr, "127.0.0.1:1")
			},
			step: func(_ context.Context, _ *client.Client, p *Plan, s PlanStep) error {
				if len(done) == failAt {
					return status.New(zppb.Code_STALE_EPOCH, "epoch moved past %d", p.Epoch)
				}
				done = append(done, s.String())
				return nil
			},
		}
	}
	// The planner needs its target in the topology.
	cl.Update(func(tp *zppb.Topology) {
		tp.Nodes = append(tp.Nodes, &zppb.Node{Addr: "127.0.0.1:1", State: zppb.NodeState_UP})
	})

	tests := []struct {
		name       string
		ro         runOptions
		format     output.Format
		stdin      string
		terminal   bool
		failAt     int
		wantCode   int
		wantSteps  int
		wantStdout []string
		wantStderr []string
	}{
		{name: "dry run", ro: runOptions{dryRun: true}, failAt: -1, wantStdout: []string{"Plan: replace-node, 2 step(s)", "1  move    t      0 "}},
		{name: "no --yes off a terminal", failAt: -1, wantCode: ExitUsage, wantStdout: []string{"Plan:"}, wantStderr: []string{"--yes"}},
		{name: "declined", terminal: true, stdin: "n\n", failAt: -1, wantCode: ExitAborted, wantStderr: []string{"Run these 2 steps? [y/N]"}},
		{name: "confirmed", terminal: true, stdin: "y\n", failAt: -1, wantSteps: 2, wantStderr: []string{"replace-node: done, 2/2 steps (100%)"}},
		{name: "--yes", ro: runOptions{yes: true}, failAt: -1, wantSteps: 2, wantStderr: []string{"replace-node: 1/2 steps (50%)", "replace-node: done"}},
		{name: "step fails", ro: runOptions{yes: true}, failAt: 1, wantCode: ExitConflict, wantSteps: 1,
			wantStderr: []string{"replace-node: failed after 1/2 steps (50%)", "step 2 of 2 (move t/"}},
		{name: "json", ro: runOptions{yes: true}, format: output.JSON, failAt: -1, wantSteps: 2, wantStdout: []string{`"done": 2`, `"operation": "replace-node"`}},
		{name: "json dry run", ro: runOptions{dryRun: true}, format: output.JSON, failAt: -1, wantStdout: []string{`"dry_run": true`, `"done": 0`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done = nil
			code, stdout, stderr := opRun(t, cl, op(tt.failAt), tt.ro, tt.format, tt.stdin, tt.terminal)
			if code != tt.wantCode || len(done) != tt.wantSteps {
				t.Fatalf("exit %d, %d steps; want %d, %d\nstdout: %s\nstderr: %s", code, len(done), tt.wantCode, tt.wantSteps, stdout, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if tt.format == output.JSON {
				var v operationJSON
				if err := json.Unmarshal([]byte(stdout), &v); err != nil || v.Plan == nil || len(v.Plan.Steps) != 2 {
					t.Fatalf("json %v: %s", err, stdout)
				}
			}
		})
	}

	t.Run("unsupported touches nothing", func(t *testing.T) {
		planned := false
		code, _, stderr := opRun(t, cl, operation{name: "expand", why: "no MIGRATE request",
			plan: func(context.Context, *client.Client) (*Plan, error) { planned = true; return nil, nil }},
			runOptions{yes: true}, output.Text, "", false)
		if code != ExitUnsupported || planned || !strings.Contains(stderr, "expand: not supported yet: no MIGRATE request") {
			t.Fatalf("exit %d, planned %v: %s", code, planned, stderr)
		}
	})
}

func TestPlanners(t *testing.T) {
	const a, b, c, d, down = "n:1", "n:2", "n:3", "n:4", "n:5"
	topo := &client.Topology{Epoch: 9,
		Nodes: []client.Node{{Addr: a, State: "UP"}, {Addr: b, State: "UP"}, {Addr: c, State: "UP"}, {Addr: d, State: "UP"}, {Addr: down, State: "DOWN"}},
		Tables: []client.Table{
			{Name: "t", PartitionCount: 2, Partitions: []client.Partition{
				{ID: 0, Master: a, Slaves: []string{b, down}},
				{ID: 1, Master: b, Slaves: []string{c}},
			}},
			{Name: "u", PartitionCount: 1, Partitions: []client.Partition{{ID: 0, Master: c, Slaves: []string{a}}}},
		}}
	step := func(action, table string, id uint32, from, to string) string {
		return PlanStep{Action: action, Table: table, Partition: id, From: from, To: to}.String()
	}
	tests := []struct {
		name     string
		plan     func() (*Plan, error)
		want     []string
		wantCode zppb.Code
	}{
		{"setmaster", func() (*Plan, error) { return planSetMaster(topo, "t", 0, b) }, []string{step("setmaster", "t", 0, a, b)}, 0},
		{"setmaster to a down slave", func() (*Plan, error) { return planSetMaster(topo, "t", 0, down) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"setmaster to a non-slave", func() (*Plan, error) { return planSetMaster(topo, "t", 0, c) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"setmaster to the master", func() (*Plan, error) { return planSetMaster(topo, "t", 0, a) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"setmaster unknown table", func() (*Plan, error) { return planSetMaster(topo, "x", 0, a) }, nil, zppb.Code_TABLE_NOT_FOUND},
		{"setmaster unknown partition", func() (*Plan, error) { return planSetMaster(topo, "t", 7, b) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"addslave", func() (*Plan, error) { return planAddSlave(topo, "t", 1, d) }, []string{step("addslave", "t", 1, "", d)}, 0},
		{"addslave to a holder", func() (*Plan, error) { return planAddSlave(topo, "t", 1, c) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"addslave to an unknown node", func() (*Plan, error) { return planAddSlave(topo, "t", 1, "n:9") }, nil, zppb.Code_NODE_NOT_FOUND},
		{"removeslave", func() (*Plan, error) { return planRemoveSlave(topo, "t", 0, down) }, []string{step("removeslave", "t", 0, down, "")}, 0},
		{"removeslave of the master", func() (*Plan, error) { return planRemoveSlave(topo, "t", 0, a) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"move", func() (*Plan, error) { return planMove(topo, "t", 0, down, d) }, []string{step("move", "t", 0, down, d)}, 0},
		{"move from a non-holder", func() (*Plan, error) { return planMove(topo, "t", 0, c, d) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"move to a down node", func() (*Plan, error) { return planMove(topo, "t", 1, b, down) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"replace-node", func() (*Plan, error) { return planReplaceNode(topo, a, d) },
			[]string{step("move", "t", 0, a, d), step("move", "u", 0, a, d)}, 0},
		{"replace-node onto a holder", func() (*Plan, error) { return planReplaceNode(topo, a, b) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"replace-node of an idle node", func() (*Plan, error) { return planReplaceNode(topo, d, a) }, nil, zppb.Code_INVALID_ARGUMENT},
		{"replace-node of an unknown node", func() (*Plan, error) { return planReplaceNode(topo, "n:9", d) }, nil, zppb.Code_NODE_NOT_FOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.plan()
			if tt.wantCode != 0 {
				if status.Code(err) != tt.wantCode {
					t.Fatalf("err %v, want %v", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range p.Steps {
				got = append(got, s.String())
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || p.Epoch != 9 {
				t.Fatalf("plan %v, want %v", p, tt.want)
			}
		})
	}
}
