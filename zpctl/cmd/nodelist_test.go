package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// TestNodeListSelects: --state and --zone select nodes, and the text shows
// the first rows of them with a line saying how many it left out.
func TestNodeListSelects(t *testing.T) {
	var nodes []client.Node
	for i := range 250 {
		n := client.Node{Addr: fmt.Sprintf("10.0.0.%d:9231", i), State: "UP", Zone: fmt.Sprintf("z%d", i%2)}
		if i%5 == 0 {
			n.State = "DOWN"
		}
		nodes = append(nodes, n)
	}
	tests := []struct {
		name     string
		sel      nodeSelection
		selected int
		text     int // rows in the text
		leftOut  int
		wantErr  bool
	}{
		{"every node", nodeSelection{}, 250, detailRows, 150, false},
		{"every node, all", nodeSelection{all: true}, 250, 250, 0, false},
		{"down", nodeSelection{state: "down"}, 50, 50, 0, false},
		{"up in a zone", nodeSelection{state: "UP", zone: "z1"}, 100, 100, 0, false},
		{"unknown state", nodeSelection{state: "sideways"}, 0, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := tt.sel
			err := sel.validate()
			var ue *usageError
			if tt.wantErr {
				if !errors.As(err, &ue) {
					t.Fatalf("validate: %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var rows []nodeRow
			for _, n := range nodes {
				if sel.selects(n) {
					rows = append(rows, nodeRow{Node: n})
				}
			}
			if len(rows) != tt.selected {
				t.Fatalf("%d nodes selected, want %d", len(rows), tt.selected)
			}
			limit := detailRows
			if sel.all {
				limit = 0
			}
			var buf bytes.Buffer
			if err := writeNodeList(&buf, rows, limit, time.Now()); err != nil {
				t.Fatal(err)
			}
			text := buf.String()
			if got := strings.Count(text, ":9231"); got != tt.text {
				t.Errorf("text has %d node rows, want %d", got, tt.text)
			}
			if left := fmt.Sprintf("... %d more nodes not shown", tt.leftOut); (tt.leftOut > 0) != strings.Contains(text, left) {
				t.Errorf("text %q, want %q: %v", text[max(0, len(text)-120):], left, tt.leftOut > 0)
			}
		})
	}
}
