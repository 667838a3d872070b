package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

func TestParsePartitionRanges(t *testing.T) {
	tests := []struct {
		in      string
		want    [][2]uint32
		wantErr bool
	}{
		{"", nil, false},
		{"7", [][2]uint32{{7, 7}}, false},
		{"0-99, 512", [][2]uint32{{0, 99}, {512, 512}}, false},
		{"5-3", nil, true},
		{"x", nil, true},
		{"1-", nil, true},
		{"-1", nil, true},
	}
	for _, tt := range tests {
		got, err := parsePartitionRanges(tt.in)
		var ue *usageError
		if tt.wantErr != (err != nil) || err != nil && !errors.As(err, &ue) {
			t.Errorf("%q: error %v, want an error %v (a usage error)", tt.in, err, tt.wantErr)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestDescribeSelects: --partitions and --node select the partitions
// describe shows, in JSON as in the text.
func TestDescribeSelects(t *testing.T) {
	s := surveytest.Healthy()
	node := surveytest.Nodes[1]
	tests := []struct {
		name string
		sel  partitionSelection
		want []uint32
	}{
		{"every partition", partitionSelection{}, []uint32{0, 1, 2, 3, 4, 5, 6, 7}},
		{"ranges", partitionSelection{ranges: [][2]uint32{{1, 2}, {6, 9}}}, []uint32{1, 2, 6, 7}},
		{"node", partitionSelection{node: node}, nil},
		{"node and range", partitionSelection{node: node, ranges: [][2]uint32{{0, 3}}}, nil},
	}
	tb, _ := s.Table("default")
	for _, p := range tb.Partitions {
		if p.Master == node || slices.Contains(p.Slaves, node) {
			tests[2].want = append(tests[2].want, p.ID)
			if p.ID <= 3 {
				tests[3].want = append(tests[3].want, p.ID)
			}
		}
	}
	for _, tt := range tests {
		d, err := describeFromSurvey(s, "default", tt.sel)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint32
		for _, p := range d.Partitions {
			got = append(got, p.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: partitions %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestTableDetailRows: the text of a table of many partitions shows the
// first detailRows and says how to see the others; every one with no limit.
func TestTableDetailRows(t *testing.T) {
	tb := client.Table{Name: "big", PartitionCount: 4096, Replicas: 1}
	for i := range uint32(4096) {
		tb.Partitions = append(tb.Partitions, client.Partition{ID: i, State: "ACTIVE", Master: "127.0.0.1:9231"})
	}
	parts := make([]describePartition, len(tb.Partitions))
	for i, p := range tb.Partitions {
		parts[i] = describePartition{Partition: p}
	}
	for _, tt := range []struct {
		name  string
		parts []describePartition
		rows  int
		want  int
	}{
		{"create", nil, detailRows, detailRows},
		{"describe", parts, detailRows, detailRows},
		{"describe --all", parts, 0, 4096},
	} {
		var b bytes.Buffer
		if err := writeTableDetail(&b, tb, tt.parts, tt.rows); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		shown := strings.Count(out, "ACTIVE")
		footer := fmt.Sprintf("... %d more partitions not shown: zpctl table describe big --partitions %d-4095", 4096-tt.want, tt.want)
		if shown != tt.want || strings.Contains(out, footer) != (tt.want < 4096) {
			t.Errorf("%s: %d partitions shown, footer %v; want %d\n%s", tt.name, shown, strings.Contains(out, footer), tt.want, out[len(out)-300:])
		}
	}
}
