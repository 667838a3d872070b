package replica

import (
	"context"
	"testing"
	"time"
)

// TestDataSize: a replica reports its data's size, keeps the figure for
// sizeRefresh, and reports 0 (unknown) while held (a split's child before
// its trim) or trimming; SampleSlots reads its keys.
func TestDataSize(t *testing.T) {
	r, _, keys := splitFixture(t, 300, 1000)
	now := time.Now()
	r.opts.Now = func() time.Time { return now }
	size := r.DataSize()
	if size < 300*1000 {
		t.Fatalf("DataSize %d for 300 values of 1,000 random bytes", size)
	}
	r.HoldSize(true)
	if got := r.DataSize(); got != 0 {
		t.Fatalf("held: DataSize %d, want 0", got)
	}
	r.HoldSize(false)
	if got := r.DataSize(); got != size {
		t.Fatalf("released: DataSize %d, want %d", got, size)
	}
	big := string(make([]byte, 2<<20))
	if err := r.Write(context.Background(), nil, put("more", big, 0)); err != nil {
		t.Fatal(err)
	}
	if got := r.DataSize(); got != size {
		t.Fatalf("within sizeRefresh: DataSize %d, want the figure kept, %d", got, size)
	}
	now = now.Add(sizeRefresh)
	if got := r.DataSize(); got < size+1<<20 {
		t.Fatalf("after sizeRefresh and 2 MiB more: DataSize %d, was %d", got, size)
	}
	s, err := r.SampleSlots(1000)
	if err != nil || !s.Exact || s.Keys != len(keys)+1 || s.Bytes < size/2 {
		t.Fatalf("SampleSlots: %+v (%d keys written), %v", s, len(keys), err)
	}
}
