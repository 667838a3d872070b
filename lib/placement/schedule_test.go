package placement

import (
	"errors"
	"reflect"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/status"
)

func TestRunnable(t *testing.T) {
	mv := func(pid uint32, from, to string) Move { return Move{Table: "t", Partition: pid, From: from, To: to} }
	tests := []struct {
		name             string
		pending, running []Move
		max              int
		want             []Move
	}{
		{
			name:    "per node bound",
			pending: []Move{mv(0, "a", "x"), mv(1, "a", "y"), mv(2, "b", "x"), mv(3, "b", "y")},
			max:     1,
			want:    []Move{mv(0, "a", "x"), mv(3, "b", "y")},
		},
		{
			name:    "bound 2",
			pending: []Move{mv(0, "a", "x"), mv(1, "a", "y"), mv(2, "a", "z"), mv(3, "b", "x")},
			max:     2,
			want:    []Move{mv(0, "a", "x"), mv(1, "a", "y"), mv(3, "b", "x")},
		},
		{
			name:    "running count",
			pending: []Move{mv(0, "a", "x"), mv(1, "b", "y")},
			running: []Move{mv(9, "c", "x")},
			max:     1,
			want:    []Move{mv(1, "b", "y")},
		},
		{
			name:    "one move per partition",
			pending: []Move{mv(0, "a", "x"), mv(0, "b", "y"), mv(1, "c", "z")},
			running: []Move{mv(1, "d", "w")},
			max:     5,
			want:    []Move{mv(0, "a", "x")},
		},
		{
			name:    "bound below 1 is 1",
			pending: []Move{mv(0, "a", "x"), mv(1, "a", "y")},
			max:     0,
			want:    []Move{mv(0, "a", "x")},
		},
		{name: "nothing pending", running: []Move{mv(0, "a", "x")}, max: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Runnable(tt.pending, tt.running, tt.max); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSchedule: the waves of an expand take every move once, keep the
// bounds, and are as few as the busiest node allows.
func TestSchedule(t *testing.T) {
	nodes, tables := expanded()
	plan, err := Rebalance(nodes, tables, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bound := range []int{1, 2, 4} {
		waves := Schedule(plan.Moves, bound)
		seen := map[Move]bool{}
		for _, w := range waves {
			if len(w) == 0 {
				t.Fatal("empty wave")
			}
			per := map[string]int{}
			parts := map[uint32]bool{}
			for _, m := range w {
				per[m.From]++
				per[m.To]++
				if parts[m.Partition] {
					t.Fatalf("partition %d twice in a wave", m.Partition)
				}
				parts[m.Partition] = true
				seen[m] = true
			}
			for n, c := range per {
				if c > bound {
					t.Fatalf("bound %d: %s in %d moves", bound, n, c)
				}
			}
		}
		if len(seen) != len(plan.Moves) {
			t.Fatalf("bound %d: %d of %d moves scheduled", bound, len(seen), len(plan.Moves))
		}
		// Every move involves one of the 3 new nodes, each the target
		// of 32: at least 32/bound waves.
		t.Logf("bound %d: %d waves", bound, len(waves))
		if lower := (32 + bound - 1) / bound; len(waves) < lower || len(waves) > 2*lower {
			t.Errorf("bound %d: %d waves, want about %d", bound, len(waves), lower)
		}
	}
	if Schedule(nil, 1) != nil {
		t.Fatal("waves for no moves")
	}
}

func TestApply(t *testing.T) {
	tables := []Table{{Name: "t", Partitions: []Replicas{{Master: "a", Slaves: []string{"b", "c"}}}}}
	got, err := Apply(tables, Plan{
		Moves:       []Move{{Table: "t", Partition: 0, From: "a", To: "d"}, {Table: "t", Partition: 0, From: "c", To: "e"}},
		MasterMoves: []MasterMove{{Table: "t", Partition: 0, To: "e"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Table{{Name: "t", Partitions: []Replicas{{Master: "e", Slaves: []string{"b", "d"}}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if tables[0].Partitions[0].Master != "a" || tables[0].Partitions[0].Slaves[1] != "c" {
		t.Fatal("Apply modified its input")
	}
	bad := []Plan{
		{Moves: []Move{{Table: "x", Partition: 0, From: "a", To: "d"}}},
		{Moves: []Move{{Table: "t", Partition: 1, From: "a", To: "d"}}},
		{Moves: []Move{{Table: "t", Partition: 0, From: "z", To: "d"}}},
		{Moves: []Move{{Table: "t", Partition: 0, From: "a", To: "b"}}},
		{MasterMoves: []MasterMove{{Table: "t", Partition: 0, To: "z"}}},
		{MasterMoves: []MasterMove{{Table: "t", Partition: 0, To: "a"}}},
	}
	for _, p := range bad {
		if _, err := Apply(tables, p); !errors.Is(err, status.ErrInvalidArgument) {
			t.Errorf("%+v: err = %v", p, err)
		}
	}
}
