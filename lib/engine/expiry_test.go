package engine

import (
	"fmt"
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestCompactionFilterDropsExpired(t *testing.T) {
	d := newTestDB(t)
	const now = 1_000_000
	var muts []*zppb.Mutation
	for i := range 100 {
		exp := int64(0)
		switch i % 4 {
		case 0:
			exp = now - 1 // expired
		case 1:
			exp = now // expires exactly now: expired
		case 2:
			exp = now + 1 // alive
		}
		muts = append(muts, put(fmt.Sprintf("{t%d}k%03d", i%3, i), "value", exp))
	}
	d.apply(muts...)
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := d.rawDataKeys(); got != 100 {
		t.Fatalf("%d raw keys before compaction, want 100", got)
	}

	d.expiry.set(now)
	if err := d.Compact(); err != nil {
		t.Fatal(err)
	}
	if got := d.rawDataKeys(); got != 50 {
		t.Fatalf("%d raw keys after compaction, want 50 (expired ones dropped)", got)
	}
	for i := range 100 {
		key := fmt.Sprintf("{t%d}k%03d", i%3, i)
		// Ask as of an earlier time: had the filter not removed the value,
		// Get would return it.
		got := d.mustGet(key, 0)
		if alive := i%4 >= 2; alive != (got == "value") {
			t.Errorf("key %s (case %d): Get = %q after compaction", key, i%4, got)
		}
	}
	// Metadata is never filtered.
	if term, lsn := d.Applied(); lsn != 1 || term != 1 {
		t.Fatalf("Applied() = (%d, %d)", term, lsn)
	}
	tt, tl, err := readApplied(d.db, d.ro, d.meta)
	if err != nil || tt != 1 || tl != 1 {
		t.Fatalf("applied keys after compaction = (%d, %d), %v", tt, tl, err)
	}
}

func TestCompactionFilterWallClock(t *testing.T) {
	d := newTestDB(t)
	d.apply(put("old", "v", 1), put("future", "v", 1<<62), put("forever", "v", 0))
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := d.Compact(); err != nil {
		t.Fatal(err)
	}
	if got := d.rawDataKeys(); got != 2 {
		t.Fatalf("%d raw keys, want 2 (only the 1970 expiry dropped)", got)
	}
}

func TestExpiredKeys(t *testing.T) {
	d := newTestDB(t)
	const now = 5000
	var muts []*zppb.Mutation
	var want []string
	for i := range 60 {
		key := fmt.Sprintf("{t%d}k%02d", i%4, i)
		exp := int64(0)
		if i%3 == 0 {
			exp = now - int64(i)
			want = append(want, key)
		}
		muts = append(muts, put(key, "v", exp))
	}
	d.apply(muts...)

	var got []string
	var cursor []byte
	calls := 0
	for {
		keys, next, err := d.ExpiredKeys(cursor, now, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 3 {
			t.Fatalf("%d keys with limit 3", len(keys))
		}
		for _, k := range keys {
			got = append(got, string(k))
		}
		calls++
		if next == nil {
			break
		}
		cursor = next
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("ExpiredKeys found %q\nwant %q", got, want)
	}
	if calls < len(want)/3 {
		t.Fatalf("%d calls for %d keys with limit 3", calls, len(want))
	}

	// The node turns them into deletes through the binlog.
	var dels []*zppb.Mutation
	for _, k := range got {
		if exp, err := d.Expired([]byte(k), now); err != nil || !exp {
			t.Fatalf("Expired(%q) = %v, %v", k, exp, err)
		}
		dels = append(dels, del(k))
	}
	d.apply(dels...)
	if keys, next, err := d.ExpiredKeys(nil, now, 100); err != nil || len(keys) != 0 || next != nil {
		t.Fatalf("after deleting: %q, %q, %v", keys, next, err)
	}
	if _, _, err := d.ExpiredKeys([]byte("m/x"), now, 1); err == nil {
		t.Fatal("ExpiredKeys accepted a foreign cursor")
	}
	if _, _, err := d.ExpiredKeys(nil, now, 0); err == nil {
		t.Fatal("ExpiredKeys accepted limit 0")
	}
}

func TestForEachSkipsExpiredAndMeta(t *testing.T) {
	d := newTestDB(t)
	d.apply(put("{a}1", "x", 0), put("b", "y", 500), put("c", "z", 2000))
	var got []string
	err := d.ForEach(1000, func(k, v []byte, exp int64) error {
		got = append(got, fmt.Sprintf("%s=%s@%d", k, v, exp))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Keys without a hashtag sort first (empty tag), then by tag.
	want := []string{"c=z@2000", "{a}1=x@0"}
	if !slices.Equal(got, want) {
		t.Fatalf("ForEach saw %v, want %v", got, want)
	}
}
