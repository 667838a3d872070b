package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// TestSampleSlots: a small DB is read whole, its bytes by slot exact and
// expired keys left out; a large one is sampled within the bound, and the
// sample's share of bytes in a range of slots is near the data's.
func TestSampleSlots(t *testing.T) {
	const now = 1_000_000
	t.Run("small: exact", func(t *testing.T) {
		d := newTestDB(t)
		d.apply(put("a", "12345", 0), put("{t}x", "1", 0), put("{t}y", "22", 0), put("gone", "xxxx", now-1))
		s, err := d.SampleSlots(100, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		want := map[uint32]uint64{
			uint32(keyspace.Slot([]byte("a"))):    uint64(len(dataKey([]byte("a"))) + len(encodeValue([]byte("12345"), 0))),
			uint32(keyspace.Slot([]byte("{t}x"))): uint64(len(dataKey([]byte("{t}x"))) + len(encodeValue([]byte("1"), 0)) + len(dataKey([]byte("{t}y"))) + len(encodeValue([]byte("22"), 0))),
		}
		if !s.Exact || s.Keys != 3 || fmt.Sprint(s.BySlot) != fmt.Sprint(want) {
			t.Fatalf("sample %+v, want exact, 3 keys, %v", s, want)
		}
	})
	t.Run("large: sampled", func(t *testing.T) {
		d := newTestDB(t)
		// Keys of slots below 4096 hold 1,000-byte values, the others 50:
		// about 82% of the bytes in the lowest quarter of the slots.
		big, small := strings.Repeat("b", 1000), strings.Repeat("s", 50)
		var total, low uint64
		const keys = 20000
		for i := 0; i < keys; i += 500 {
			var muts []*zppb.Mutation
			for j := i; j < i+500; j++ {
				k := fmt.Sprintf("key:%08d", j)
				v := small
				if keyspace.Slot([]byte(k)) < 4096 {
					v = big
				}
				w := uint64(len(dataKey([]byte(k))) + len(encodeValue([]byte(v), 0)))
				total += w
				if keyspace.Slot([]byte(k)) < 4096 {
					low += w
				}
				muts = append(muts, put(k, v, 0))
			}
			d.apply(muts...)
		}
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		s, err := d.SampleSlots(2048, rand.New(rand.NewPCG(1, 2)), now)
		if err != nil {
			t.Fatal(err)
		}
		if s.Exact || s.Keys < 1024 || s.Keys > 4096 {
			t.Fatalf("sampled %d keys (exact %v), want between 1024 and 4096 of %d", s.Keys, s.Exact, keys)
		}
		var sampledLow, sampled uint64
		for slot, w := range s.BySlot {
			sampled += w
			if slot < 4096 {
				sampledLow += w
			}
		}
		want, got := float64(low)/float64(total), float64(sampledLow)/float64(sampled)
		t.Logf("bytes in slots < 4096: %.3f of the data, %.3f of the sample (%d keys)", want, got, s.Keys)
		if got < want-0.1 || got > want+0.1 {
			t.Fatalf("sample puts %.3f of the bytes below slot 4096, the data %.3f", got, want)
		}
	})
}

// TestSampleSlotsNamesBySize: large values under one prefix of names
// (all in the lowest quarter of the slots) and small ones under another,
// far apart in the key space: the sample still weighs them by their bytes
// (runs placed evenly between the first and last key gave the small ones,
// after the wide gap, most of the weight).
func TestSampleSlotsNamesBySize(t *testing.T) {
	d := newTestDB(t)
	// Random values: the table files hold what was written (approximate
	// sizes are of compressed blocks).
	src := rand.NewChaCha8([32]byte{})
	random := func(n int) string {
		b := make([]byte, n)
		src.Read(b)
		return string(b)
	}
	var total, low uint64
	add := func(muts []*zppb.Mutation, k, v string) []*zppb.Mutation {
		w := uint64(len(dataKey([]byte(k))) + len(encodeValue([]byte(v), 0)))
		total += w
		if keyspace.Slot([]byte(k)) < 4096 {
			low += w
		}
		return append(muts, put(k, v, 0))
	}
	for i := 0; i < 10000; i += 500 {
		var muts []*zppb.Mutation
		for j := i; j < i+500; j++ {
			if k := fmt.Sprintf("a:%06d", j); keyspace.Slot([]byte(k)) < 4096 {
				muts = add(muts, k, random(1000))
			}
			muts = add(muts, fmt.Sprintf("z:%06d", 2*j), random(50))
			muts = add(muts, fmt.Sprintf("z:%06d", 2*j+1), random(50))
		}
		d.apply(muts...)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	s, err := d.SampleSlots(4096, rand.New(rand.NewPCG(3, 4)), 1)
	if err != nil {
		t.Fatal(err)
	}
	var sampledLow, sampled uint64
	for slot, w := range s.BySlot {
		sampled += w
		if slot < 4096 {
			sampledLow += w
		}
	}
	want, got := float64(low)/float64(total), float64(sampledLow)/float64(sampled)
	t.Logf("bytes in slots < 4096: %.3f of the data, %.3f of the sample (%d keys)", want, got, s.Keys)
	if s.Exact || got < want-0.1 || got > want+0.1 {
		t.Fatalf("sample puts %.3f of the bytes below slot 4096, the data %.3f (exact %v)", got, want, s.Exact)
	}
}

// TestSampleSlotsByteBound: a DB of large values is sampled within
// sampleBytes (and one run), not read whole.
func TestSampleSlotsByteBound(t *testing.T) {
	old := sampleBytes
	sampleBytes = 1 << 20
	t.Cleanup(func() { sampleBytes = old })
	d := newTestDB(t)
	v := strings.Repeat("x", 8<<10)
	for i := 0; i < 1000; i += 100 {
		var muts []*zppb.Mutation
		for j := i; j < i+100; j++ {
			muts = append(muts, put(fmt.Sprintf("k%d", j), v, 0))
		}
		d.apply(muts...)
	}
	s, err := d.SampleSlots(4096, rand.New(rand.NewPCG(1, 2)), 1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Exact || s.Bytes > sampleBytes+sampleRun*(9<<10) || s.Keys < sampleRun {
		t.Fatalf("sample of 1,000 values of 8 KiB within %d bytes: %d keys, %d bytes, exact %v", sampleBytes, s.Keys, s.Bytes, s.Exact)
	}
}

func TestKeyBetween(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		f    float64
	}{{"d\x00key:0", "d\x00key:9", 0.5}, {"d\x00a", "d\x00zzzz", 0}, {"d\x00a", "d\x00zzzz", 1}, {"d", "d", 0.3}} {
		k := string(keyBetween([]byte(tt.a), []byte(tt.b), tt.f))
		if k < tt.a[:len(tt.a)-1] || k > tt.b+"\xff" {
			t.Errorf("keyBetween(%q, %q, %v) = %q: outside", tt.a, tt.b, tt.f, k)
		}
	}
}

// BenchmarkSampleSlots measures a split point's sample of a DB of 200,000
// keys of 100-byte values, flushed: go test -run '^$' -bench
// BenchmarkSampleSlots ./lib/engine/ (figures in docs/benchmarks.md).
func BenchmarkSampleSlots(b *testing.B) {
	d := newTestDB(b)
	src := rand.NewChaCha8([32]byte{})
	v := make([]byte, 100)
	for i := 0; i < 200_000; i += 1000 {
		muts := make([]*zppb.Mutation, 0, 1000)
		for j := i; j < i+1000; j++ {
			src.Read(v) // incompressible
			muts = append(muts, put(fmt.Sprintf("user:%08d", j), string(v), 0))
		}
		d.apply(muts...)
	}
	if err := d.Flush(); err != nil {
		b.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		s, err := d.SampleSlots(4096, rnd, 1)
		if err != nil || s.Keys < 2048 {
			b.Fatalf("%d keys, %v", s.Keys, err)
		}
	}
}
