package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

// TestDeleteSlotsOutside: the keys outside the range go, with and without
// hashtags, one range tombstone per hashtag group; the others stay; a
// second run finds nothing to delete.
func TestDeleteSlotsOutside(t *testing.T) {
	d := newTestDB(t)
	var want []string
	wantKeys, wantGroups := int64(0), int64(0)
	keep := func(k string) bool { return keyspace.Slot([]byte(k)) < 8192 }
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i)
		d.apply(put(k, "v", 0))
		if keep(k) {
			want = append(want, k)
		} else {
			wantKeys++
		}
	}
	for g := range 100 {
		for i := range 5 {
			k := fmt.Sprintf("{g%d}%d", g, i)
			d.apply(put(k, "v", 0))
			if keep(k) {
				want = append(want, k)
			}
		}
		if !keep(fmt.Sprintf("{g%d}", g)) {
			wantGroups++
		}
	}
	st, err := d.DeleteSlotsOutside(context.Background(), 0, 8192)
	if err != nil {
		t.Fatal(err)
	}
	if st.Keys != wantKeys || st.Groups != wantGroups || st.Examined != 1100 {
		t.Errorf("stats %+v, want %d keys, %d groups, 1100 examined", st, wantKeys, wantGroups)
	}
	var got []string
	if err := d.ForEach(0, func(k, _ []byte, _ int64) error { got = append(got, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%d keys left, want %d", len(got), len(want))
	}
	if st, err := d.DeleteSlotsOutside(context.Background(), 0, 8192); err != nil || st.Keys+st.Groups != 0 {
		t.Errorf("second trim: %+v, %v", st, err)
	}
	if _, err := d.DeleteSlotsOutside(context.Background(), 8192, 8192); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty range: %v", err)
	}
}
