package engine

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestScanByHashtag(t *testing.T) {
	d := newTestDB(t)
	const now = 10_000
	var want []string // live keys of tag "user1", in order
	var muts []*zppb.Mutation
	for i := range 25 {
		k := fmt.Sprintf("{user1}.k%02d", i)
		exp := int64(0)
		switch {
		case i%5 == 0:
			exp = now - 1 // expired
		case i%7 == 0:
			exp = now + 1 // alive, with a TTL
		}
		muts = append(muts, put(k, "v"+k, exp))
		if !expired(exp, now) {
			want = append(want, k)
		}
		// Interleave keys of other tags, of no tag, and look-alikes.
		muts = append(muts,
			put(fmt.Sprintf("{user10}.k%02d", i), "x", 0),
			put(fmt.Sprintf("{user}.k%02d", i), "x", 0),
			put(fmt.Sprintf("user1.k%02d", i), "x", 0),
			put(fmt.Sprintf("a{user1}b%02d", i), "same tag, other prefix", 0),
		)
		want = append(want, fmt.Sprintf("a{user1}b%02d", i))
	}
	d.apply(muts...)
	d.apply(del("{user1}.k03"))
	want = slices.DeleteFunc(want, func(k string) bool { return k == "{user1}.k03" })
	slices.Sort(want)

	for _, count := range []int{1, 3, 7, 100} {
		t.Run(fmt.Sprint("count", count), func(t *testing.T) {
			var got []string
			var cursor []byte
			pages := 0
			for {
				entries, next, err := d.Scan([]byte("user1"), cursor, count, now)
				if err != nil {
					t.Fatal(err)
				}
				if len(entries) > count {
					t.Fatalf("page of %d entries, count %d", len(entries), count)
				}
				for _, e := range entries {
					got = append(got, string(e.Key))
					if want := "v" + string(e.Key); e.Key[0] == '{' && string(e.Value) != want {
						t.Fatalf("value of %q = %q", e.Key, e.Value)
					}
				}
				pages++
				if len(next) == 0 {
					break
				}
				if string(next) != got[len(got)-1] {
					t.Fatalf("next cursor %q is not the last key returned %q", next, got[len(got)-1])
				}
				cursor = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("scan returned %d keys:\n%q\nwant %d:\n%q", len(got), got, len(want), want)
			}
			if wantPages := (len(want) + count - 1) / count; pages != wantPages {
				t.Fatalf("%d pages, want %d", pages, wantPages)
			}
		})
	}

	t.Run("ttl reported", func(t *testing.T) {
		entries, _, err := d.Scan([]byte("user1"), []byte("{user1}.k06"), 1, now)
		if err != nil || len(entries) != 1 || string(entries[0].Key) != "{user1}.k07" || entries[0].ExpireAtMs != now+1 {
			t.Fatalf("Scan = %+v, %v", entries, err)
		}
	})
	t.Run("keys without hashtag", func(t *testing.T) {
		entries, next, err := d.Scan(nil, nil, MaxScanCount, now)
		if err != nil || len(next) != 0 || len(entries) != 25 || string(entries[0].Key) != "user1.k00" {
			t.Fatalf("Scan(no tag) = %d entries, next %q, %v", len(entries), next, err)
		}
	})
	t.Run("unknown tag", func(t *testing.T) {
		entries, next, err := d.Scan([]byte("nobody"), nil, 10, now)
		if err != nil || len(entries) != 0 || next != nil {
			t.Fatalf("Scan(nobody) = %v, %q, %v", entries, next, err)
		}
	})
	t.Run("cursor of another tag", func(t *testing.T) {
		if _, _, err := d.Scan([]byte("user1"), []byte("{user10}.k01"), 10, now); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("Scan with a foreign cursor = %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("count defaults and cap", func(t *testing.T) {
		var muts []*zppb.Mutation
		for i := range 1500 {
			muts = append(muts, put(fmt.Sprintf("{big}%04d", i), "v", 0))
		}
		d.apply(muts...)
		for _, tc := range []struct{ count, want int }{{0, DefaultScanCount}, {-1, DefaultScanCount}, {5000, MaxScanCount}} {
			entries, next, err := d.Scan([]byte("big"), nil, tc.count, now)
			if err != nil || len(entries) != tc.want || len(next) == 0 {
				t.Fatalf("Scan(count %d) = %d entries, next %q, %v; want %d", tc.count, len(entries), next, err, tc.want)
			}
		}
	})
}

// TestScanSkipsManyExpired checks that a scan through a long run of expired
// keys stops after its budget with a cursor instead of reading them all.
func TestScanSkipsManyExpired(t *testing.T) {
	d := newTestDB(t)
	var muts []*zppb.Mutation
	n := scanBudget + 500
	for i := range n {
		muts = append(muts, put(fmt.Sprintf("{t}%06d", i), "v", 1))
	}
	muts = append(muts, put("{t}zzz", "alive", 0))
	d.apply(muts...)

	entries, next, err := d.Scan([]byte("t"), nil, 10, 100)
	if err != nil || len(entries) != 0 || string(next) != fmt.Sprintf("{t}%06d", scanBudget-1) {
		t.Fatalf("first page = %d entries, next %q, %v", len(entries), next, err)
	}
	entries, next, err = d.Scan([]byte("t"), next, 10, 100)
	if err != nil || len(entries) != 1 || string(entries[0].Key) != "{t}zzz" || next != nil {
		t.Fatalf("second page = %+v, next %q, %v", entries, next, err)
	}
}
