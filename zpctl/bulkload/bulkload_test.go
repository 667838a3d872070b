package bulkload

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

// TestParse: each format's records, base64 fields, expiries, gzip by
// content, and bad lines with their numbers.
func TestParse(t *testing.T) {
	const now = 1_000_000
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.String()
	}
	for _, tc := range []struct {
		name, in string
		f        Format
		want     []string // key=value@expiry
		bad      []int64
	}{
		{"tsv", "a\t1\nb\tbase64:AP8=\t2000000\n\nc\t3\t500\nbad\nd\t4\tx\n", TSV, []string{"a=1@0", "b=\x00\xff@2000000"}, []int64{5, 6}},
		{"csv", "a,1\n\"b,c\",\"x\"\"y\"\nbad\n\"unterminated\n", CSV, []string{"a=1@0", "b,c=x\"y@0"}, []int64{3, 4}},
		{"jsonl", `{"key":"a","value":"1"}` + "\n" + `{"key_base64":"AP8=","value":"v","expire_at_ms":3000000}` + "\n" +
			`{"key":"t","value":"v","ttl_ms":5}` + "\n" + `{"key":"a"}` + "\n" + `{"key":"a","value":"1","x":1}` + "\n" + `not json` + "\n",
			JSONL, []string{"a=1@0", "\x00\xff=v@3000000", "t=v@1000005"}, []int64{4, 5, 6}},
		{"gzip", gz("a\t1\n" + strings.Repeat("k", 64<<10+1) + "\tv\n"), TSV, []string{"a=1@0"}, []int64{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			var bad []int64
			err := Parse("f", strings.NewReader(tc.in), tc.f, Limits{MaxValueSize: 10, NowMs: now},
				func(r Record) error {
					got = append(got, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.ExpireAtMs))
					return nil
				},
				func(b BadLine) error { bad = append(bad, b.Line); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || fmt.Sprint(bad) != fmt.Sprint(tc.bad) {
				t.Errorf("got %q bad %v, want %q bad %v", got, bad, tc.want, tc.bad)
			}
		})
	}
}

// TestSorterSpillsAndMerges: records spilled to several runs, and held
// in several sorted chunks, merge back in SortKey order, each key once
// with its last value.
func TestSorterSpillsAndMerges(t *testing.T) {
	for _, chunkLen := range []int{defaultChunkLen, 7} {
		t.Run(fmt.Sprint("chunks of ", chunkLen), func(t *testing.T) { testSorterSpillsAndMerges(t, chunkLen) })
	}
}

func testSorterSpillsAndMerges(t *testing.T, chunkLen int) {
	s := newSorter(t.TempDir(), 2, 1, 4<<10)
	var seq uint64
	s.chunkLen = chunkLen
	const n = 2000
	for round := range 3 {
		for i := range n {
			if round > 0 && i%(round*3) != 0 {
				continue
			}
			seq++
			if err := s.shards[0].add(uint32(i%2), Record{Key: []byte(fmt.Sprintf("k%05d", i)), Value: []byte(fmt.Sprint(round))}, seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.spilledBytes() == 0 || len(s.shards[0].parts[0].runs) < 2 {
		t.Fatalf("nothing spilled: %d bytes, %d runs", s.spilledBytes(), len(s.shards[0].parts[0].runs))
	}
	total, dups := 0, int64(0)
	for p := range uint32(2) {
		var last []byte
		d, err := s.merge(p, func(e *entry) error {
			if last != nil && bytes.Compare(e.sortKey, last) <= 0 {
				t.Fatalf("out of order: %q after %q", e.sortKey, last)
			}
			last = e.sortKey
			var i int
			fmt.Sscanf(string(e.userKey()), "k%05d", &i)
			want := "0"
			switch {
			case i%6 == 0:
				want = "2"
			case i%3 == 0:
				want = "1"
			}
			if string(e.value) != want {
				t.Errorf("%s = %s, want %s", e.userKey(), e.value, want)
			}
			total++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		dups += d
		s.release(p)
	}
	if total != n || dups != int64((n+2)/3+(n+5)/6) {
		t.Errorf("%d keys, %d duplicates; want %d, %d", total, dups, n, (n+2)/3+(n+5)/6)
	}
}

// TestReadSections: a large plain file is read in sections at once, yet
// bad lines carry their line numbers in the file, in order, and of two
// records of a key in different sections the later wins.
func TestReadSections(t *testing.T) {
	const n = 120_000 // lines of ~80 bytes: over minSectionBytes
	badAt := map[int]bool{5: true, n/2 + 7: true, n - 3: true}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		switch {
		case badAt[i]:
			b.WriteString("no tab here\n")
		case i == 10:
			b.WriteString("dup\tfirst\n")
		case i == n:
			b.WriteString("dup\tlast\n")
		default:
			fmt.Fprintf(&b, "key%06d\t%070d\n", i, i)
		}
	}
	path := filepath.Join(t.TempDir(), "in.tsv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	in := Input{Name: "in.tsv", Open: func() (io.ReadCloser, error) { return os.Open(path) }}
	for _, tc := range []struct {
		name      string
		maxErrors int64
		wantErr   bool
	}{{"bad lines tolerated", 10, false}, {"too many bad lines", 1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSorter(t.TempDir(), 1, 3, DefaultMemory)
			f, _ := in.Open()
			if bounds := sections(f, TSV, 3); len(bounds) != 4 {
				t.Fatalf("sections %v, want 3", bounds)
			}
			f.Close()
			var bad []int64
			opts := Options{MaxErrors: tc.maxErrors, ReadBytes: new(atomic.Int64), Bad: func(b BadLine) { bad = append(bad, b.Line) }}
			var res Result
			err := readInput(context.Background(), opts, in, 0, keyspace.EvenSlotMap(1), s, &res)
			if tc.wantErr {
				if !errors.Is(err, ErrTooManyBadLines) || len(bad) > 2 {
					t.Fatalf("err %v, bad lines %v", err, bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(bad) != fmt.Sprint([]int64{5, n/2 + 7, n - 3}) || opts.ReadBytes.Load() != int64(b.Len()) {
				t.Fatalf("bad lines %v, read %d of %d bytes", bad, opts.ReadBytes.Load(), b.Len())
			}
			keys := 0
			dups, err := s.merge(0, func(e *entry) error {
				keys++
				if string(e.userKey()) == "dup" && string(e.value) != "last" {
					t.Errorf("dup = %s, want the later record's", e.value)
				}
				return nil
			})
			if err != nil || keys != n-3-1 || dups != 1 {
				t.Fatalf("%d keys, %d duplicates, %v; want %d, 1", keys, dups, err, n-4)
			}
		})
	}
}
