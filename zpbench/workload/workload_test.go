package workload

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

// TestMixRatios draws many operations from each workload and checks the
// share of each kind against the definition.
func TestMixRatios(t *testing.T) {
	tests := []struct {
		name      string
		readRatio float64
		want      map[Kind]float64
	}{
		{"set", 0, map[Kind]float64{Set: 1}},
		{"get", 0, map[Kind]float64{Get: 1}},
		{"mixed", 0.8, map[Kind]float64{Get: 0.8, Set: 0.2}},
		{"mget", 0, map[Kind]float64{MGet: 1}},
		{"incr", 0, map[Kind]float64{Incr: 1}},
		{"ycsb-a", 0, map[Kind]float64{Get: 0.5, Set: 0.5}},
		{"ycsb-b", 0, map[Kind]float64{Get: 0.95, Set: 0.05}},
		{"ycsb-c", 0, map[Kind]float64{Get: 1}},
		{"ycsb-d", 0, map[Kind]float64{Get: 0.95, Insert: 0.05}},
		{"ycsb-e", 0, map[Kind]float64{Scan: 0.95, Insert: 0.05}},
		{"ycsb-f", 0, map[Kind]float64{Get: 0.5, ReadModifyWrite: 0.5}},
	}
	const draws = 100_000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := New(Params{Name: tt.name, Records: 10_000, ValueSize: 10, ReadRatio: tt.readRatio, Batch: 4, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			s := w.Stream(0)
			var op Op
			counts := make(map[Kind]int)
			for range draws {
				s.Next(&op)
				counts[op.Kind]++
				s.Done(&op)
			}
			for k, c := range counts {
				if _, ok := tt.want[k]; !ok {
					t.Errorf("drew %d %v, not in the mix", c, k)
				}
			}
			for k, want := range tt.want {
				got := float64(counts[k]) / draws
				if math.Abs(got-want) > 0.01 {
					t.Errorf("%v: %.4f of operations, want %.2f", k, got, want)
				}
			}
		})
	}
}

func TestStreamsAreDeterministic(t *testing.T) {
	w1, _ := New(Params{Name: "ycsb-a", Records: 1000, ValueSize: 8, Batch: 1, Seed: 42})
	w2, _ := New(Params{Name: "ycsb-a", Records: 1000, ValueSize: 8, Batch: 1, Seed: 42})
	s1, s2, s3 := w1.Stream(3), w2.Stream(3), w2.Stream(4)
	var a, b, c Op
	same, differ := true, false
	for range 100 {
		s1.Next(&a)
		s2.Next(&b)
		s3.Next(&c)
		same = same && a.Kind == b.Kind && bytes.Equal(a.Key, b.Key)
		differ = differ || !bytes.Equal(a.Key, c.Key)
	}
	if !same {
		t.Error("same seed and stream gave different operations")
	}
	if !differ {
		t.Error("streams 3 and 4 gave the same operations")
	}
	if !bytes.Equal(w1.value, w2.value) || len(w1.value) != 8 {
		t.Errorf("values %q and %q", w1.value, w2.value)
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		keys Keys
		i    uint64
		want string
	}{
		{RecordKeys, 0, "{zb:0}0000000000"},
		{RecordKeys, 1234, "{zb:12}0000001234"},
		{RecordKeys, 12345678901, "{zb:123456789}12345678901"},
		{CounterKeys, 99, "{zc:0}0000000099"},
		{Keys{Prefix: "x", GroupSize: 10}, 25, "{x:2}0000000025"},
	}
	for _, tt := range tests {
		if got := string(tt.keys.Key(tt.i)); got != tt.want {
			t.Errorf("key(%d) = %q, want %q", tt.i, got, tt.want)
		}
	}
	// A group shares a slot; key order is record order inside it.
	a, b := RecordKeys.Key(1200), RecordKeys.Key(1299)
	if keyspace.Slot(a) != keyspace.Slot(b) || bytes.Compare(a, b) >= 0 {
		t.Errorf("%q and %q: slots %d, %d", a, b, keyspace.Slot(a), keyspace.Slot(b))
	}
}

// TestScanMapping checks that a scan stays in one hashtag group, starts at
// its record and carries the cursor that makes SCAN start there.
func TestScanMapping(t *testing.T) {
	w, err := New(Params{Name: "ycsb-e", Records: 1050, ValueSize: 1, Batch: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := w.Stream(0)
	var op Op
	scans := 0
	for range 10_000 {
		s.Next(&op)
		if op.Kind != Scan {
			s.Done(&op)
			continue
		}
		scans++
		if op.Count < 1 || op.Count > DefaultGroupSize || len(op.Keys) != op.Count {
			t.Fatalf("scan of %d records with %d keys", op.Count, len(op.Keys))
		}
		tag := string(op.Hashtag)
		for _, k := range op.Keys {
			if string(keyspace.HashTag(k)) != tag {
				t.Fatalf("key %q outside hashtag %q", k, tag)
			}
		}
		if !bytes.Equal(op.Key, op.Keys[0]) {
			t.Fatalf("Key %q, first of Keys %q", op.Key, op.Keys[0])
		}
		if op.Cursor != nil {
			// The cursor is the record before the first, in the same group.
			if string(keyspace.HashTag(op.Cursor)) != tag || bytes.Compare(op.Cursor, op.Keys[0]) >= 0 {
				t.Fatalf("cursor %q for first key %q", op.Cursor, op.Keys[0])
			}
		} else if !strings.HasSuffix(string(op.Keys[0]), "00") {
			t.Fatalf("no cursor but the scan starts mid-group at %q", op.Keys[0])
		}
		s.Done(&op)
	}
	if scans < 9000 {
		t.Fatalf("%d scans in 10000 operations", scans)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		want string
	}{
		{"unknown", Params{Name: "ycsb-z", Records: 1, Batch: 1}, "unknown workload"},
		{"no records", Params{Name: "get", Batch: 1}, "keyspace"},
		{"ratio", Params{Name: "mixed", Records: 1, Batch: 1, ReadRatio: 1.5}, "read ratio"},
		{"batch", Params{Name: "mget", Records: 1}, "batch"},
		{"scan", Params{Name: "ycsb-e", Records: 1, Batch: 1, MaxScan: 500}, "max scan"},
		{"distribution", Params{Name: "get", Records: 1, Batch: 1, Distribution: "normal"}, "distribution"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
