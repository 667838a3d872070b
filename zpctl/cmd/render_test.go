package cmd

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/health"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

// The text output of the commands that render a survey, from the canned
// surveys of surveytest, against testdata/TestRender/*.golden. After a
// deliberate change: go test ./zpctl/cmd -run TestRender -update, and
// review the diff.
func TestRender(t *testing.T) {
	healthy, degraded := surveytest.Healthy(), surveytest.Degraded()
	now := surveytest.T0.Add(5 * time.Second)
	tests := []struct {
		name   string
		render func(w io.Writer) error
	}{
		{"describe_healthy", func(w io.Writer) error {
			d, err := describeFromSurvey(healthy, "default", partitionSelection{})
			if err != nil {
				return err
			}
			return writeTableDetail(w, d.Table, d.Partitions, detailRows)
		}},
		{"describe_degraded", func(w io.Writer) error {
			d, err := describeFromSurvey(degraded, "users", partitionSelection{})
			if err != nil {
				return err
			}
			return writeTableDetail(w, d.Table, d.Partitions, detailRows)
		}},
		{"table_create", func(w io.Writer) error {
			tb, _ := healthy.Table("users")
			return writeTableDetail(w, tb, nil, detailRows)
		}},
		{"dump_degraded", func(w io.Writer) error {
			d, err := dumpFromSurvey(degraded, "default")
			if err != nil {
				return err
			}
			return writeDump(w, d)
		}},
		{"checkup_healthy", func(w io.Writer) error { return writeCheckup(w, health.Check(healthy, health.Options{})) }},
		{"checkup_degraded", func(w io.Writer) error { return writeCheckup(w, health.Check(degraded, health.Options{})) }},
		{"stats_qps", statsText(writeStatsQPS, degraded, "")},
		{"stats_latency", statsText(writeStatsLatency, healthy, "users")},
		{"stats_space", statsText(writeStatsSpace, healthy, "")},
		{"stats_repl", statsText(writeStatsRepl, degraded, "users")},
		{"node_info", func(w io.Writer) error {
			n := healthy.Nodes[0]
			out := nodeInfoJSON{Addr: n.Addr, Node: &n.Node}
			out.fill(n.Info, nil)
			return writeNodeInfo(w, out, now)
		}},
		{"node_list", func(w io.Writer) error {
			var rows []nodeRow
			for i, l := range degraded.Loads("") {
				// The version as the leader's memory of the PINGs has
				// it: the node's own, unknown for the one down.
				n := degraded.Nodes[i].Node
				if n.State == "UP" {
					n.Version = degraded.Nodes[i].RunningVersion()
				}
				rows = append(rows, nodeRow{Node: n, Replicas: l.Replicas, Masters: l.Masters})
			}
			return writeNodes(w, rows, now)
		}},
		{"meta_list", func(w io.Writer) error {
			st := *degraded.Meta
			st.Members = append([]client.MetaMember(nil), st.Members...)
			st.Members[0].Version, st.Members[1].Version = "v1.4.0", "v1.3.2"
			st.Members[2].Reachable, st.Members[2].Error = false, "dial tcp 127.0.0.1:9223: connect: connection refused"
			return writeMeta(w, &st)
		}},
		{"plan", func(w io.Writer) error {
			// replace-node's plan, as a dry run of REBALANCE returns it.
			p := &Plan{Operation: "replace-node", Epoch: 7}
			for _, m := range []client.Move{
				{Kind: client.MoveMigrate, Table: "default", Partition: 0, From: surveytest.Nodes[0], To: "127.0.0.1:9234"},
				{Kind: client.MoveMigrate, Table: "default", Partition: 2, From: surveytest.Nodes[0], To: "127.0.0.1:9234"},
				{Kind: client.MoveMigrate, Table: "users", Partition: 0, From: surveytest.Nodes[0], To: "127.0.0.1:9234"},
			} {
				p.Steps = append(p.Steps, stepOf(m))
			}
			return writePlan(w, p)
		}},
		{"plan_setmaster", func(w io.Writer) error {
			p, err := localPlan("setmaster", healthy.Topology, client.Move{Kind: client.MoveSetMaster, Table: "users", Partition: 1, To: surveytest.Nodes[2]})
			if err != nil {
				return err
			}
			return writePlan(w, p)
		}},
		{"moves", func(w io.Writer) error { return writeMoves(w, surveytest.Migrating().Moves) }},
		{"slowlog", func(w io.Writer) error {
			// Three nodes, one down, merged newest first and cut to 4.
			at := func(d time.Duration) int64 { return surveytest.T0.Add(-d).UnixMilli() }
			infos := []client.NodeInfo{
				{Addr: surveytest.Nodes[0], Info: client.Info{Slowlog: []client.SlowlogEntry{
					{TimeMs: at(time.Second), Command: "set", Table: "users", Key: []byte("user:1042"), DurationUs: 15_200, Code: "OK"},
					{TimeMs: at(4 * time.Second), Command: "mget", Table: "users", DurationUs: 48_000, Code: "OK"},
					{TimeMs: at(9 * time.Second), Command: "get", Table: "default", Key: []byte("old"), DurationUs: 10_100, Code: "OK"},
				}}},
				{Addr: surveytest.Nodes[1], Info: client.Info{}, Err: errors.New("client: info 127.0.0.1:9232: connection refused")},
				{Addr: surveytest.Nodes[2], Info: client.Info{Slowlog: []client.SlowlogEntry{
					{TimeMs: at(2 * time.Second), Command: "set", Table: "default", Key: []byte{0x00, 0xff, 0x10}, DurationUs: 1_250_000, Code: "NOT_ENOUGH_REPLICAS"},
					{TimeMs: at(3 * time.Second), Command: "info", DurationUs: 10_000, Code: "OK"},
				}}},
			}
			doc, err := slowlogFromInfo(infos, "", 4)
			if err == nil {
				return errors.New("no error for the node that did not answer")
			}
			return writeSlowlog(w, doc, time.UTC)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.render(&buf); err != nil {
				t.Fatal(err)
			}
			golden.RequireEqual(t, buf.Bytes())
		})
	}
}

func statsText(w statsWriter, s *survey.Snapshot, table string) func(io.Writer) error {
	return func(out io.Writer) error {
		_, text := w(s, table)
		return text(out)
	}
}
