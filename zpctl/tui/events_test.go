package tui

import (
	"slices"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

func TestDiffTopology(t *testing.T) {
	base := func() *client.Topology { return surveytest.Healthy().Topology }
	tests := []struct {
		name   string
		change func(t *client.Topology)
		want   []string
	}{
		{"nothing", func(*client.Topology) {}, nil},
		{"node down", func(t *client.Topology) { t.Nodes[1].State = "DOWN" }, []string{"node 127.0.0.1:9232 UP → DOWN"}},
		{"node joined", func(t *client.Topology) {
			t.Nodes = append(t.Nodes, client.Node{Addr: "127.0.0.1:9234", State: "UP"})
		}, []string{"node 127.0.0.1:9234 joined (UP)"}},
		{"node removed", func(t *client.Topology) { t.Nodes = t.Nodes[:2] }, []string{"node 127.0.0.1:9233 removed"}},
		{"node moved zone", func(t *client.Topology) { t.Nodes[0].Zone = "zone-x" }, []string{`node 127.0.0.1:9231 now zone "zone-x" rack "r1" weight 100`}},
		{"failover", func(t *client.Topology) {
			p := &t.Tables[0].Partitions[1]
			p.Master, p.Slaves, p.Term = "127.0.0.1:9233", []string{"127.0.0.1:9232", "127.0.0.1:9231"}, 3
		}, []string{"default/1 master 127.0.0.1:9232 → 127.0.0.1:9233 (term 3)"}},
		{"master and slaves changed", func(t *client.Topology) {
			p := &t.Tables[0].Partitions[1]
			p.Master, p.Slaves, p.Term = "127.0.0.1:9233", []string{"127.0.0.1:9231"}, 3
		}, []string{"default/1 master 127.0.0.1:9232 → 127.0.0.1:9233 (term 3)", "default/1 slaves [127.0.0.1:9233 127.0.0.1:9231] → [127.0.0.1:9231]"}},
		{"slave moved", func(t *client.Topology) { t.Tables[1].Partitions[0].Slaves = []string{"127.0.0.1:9233"} },
			[]string{"users/0 slaves [127.0.0.1:9232] → [127.0.0.1:9233]"}},
		{"state", func(t *client.Topology) { t.Tables[1].Partitions[0].State = "STUCK" }, []string{"users/0 ACTIVE → STUCK"}},
		{"table dropped", func(t *client.Topology) { t.Tables = t.Tables[:1] }, []string{"table users dropped"}},
		{"table recreated", func(t *client.Topology) { t.Tables[1].CreatedEpoch = 8 }, []string{"table users created (4 partitions, 2 replicas)"}},
		{"many changes are cut", func(t *client.Topology) {
			for _, tb := range t.Tables {
				for i := range tb.Partitions {
					tb.Partitions[i].State = "SLOWDOWN"
				}
			}
		}, []string{"default/0 ACTIVE → SLOWDOWN", "default/1 ACTIVE → SLOWDOWN", "default/2 ACTIVE → SLOWDOWN",
			"default/3 ACTIVE → SLOWDOWN", "default/4 ACTIVE → SLOWDOWN", "default/5 ACTIVE → SLOWDOWN",
			"default/6 ACTIVE → SLOWDOWN", "and 5 more changes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base()
			tt.change(next)
			got := diffTopology(base(), next)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}
