package bulkload

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"
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
	s := newSorter(t.TempDir(), 2, 4<<10)
	s.chunkLen = chunkLen
	const n = 2000
	for round := range 3 {
		for i := range n {
			if round > 0 && i%(round*3) != 0 {
				continue
			}
			if err := s.add(uint32(i%2), Record{Key: []byte(fmt.Sprintf("k%05d", i)), Value: []byte(fmt.Sprint(round))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.spilled == 0 || len(s.parts[0].runs) < 2 {
		t.Fatalf("nothing spilled: %d bytes, %d runs", s.spilled, len(s.parts[0].runs))
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
