package binlog

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkAppend appends 100-byte records one at a time, waiting for each
// to be durable as the node does before acknowledging a write.
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		b.Run(policy.String(), func(b *testing.B) {
			l := openLog(b, b.TempDir(), Options{Sync: policy, Logger: testLogger(b)})
			payload := make([]byte, 100)
			ctx := context.Background()
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			lsn := uint64(0)
			for b.Loop() {
				lsn++
				if err := l.Append(Record{Term: 1, LSN: lsn, Payload: payload}); err != nil {
					b.Fatal(err)
				}
				if err := l.WaitDurable(ctx, lsn); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(l.Stats().Syncs)/float64(b.N), "syncs/op")
		})
	}
}

// BenchmarkAppendParallel is BenchmarkAppend with concurrent writers, which
// is where group commit pays off under SyncAlways.
func BenchmarkAppendParallel(b *testing.B) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		b.Run(policy.String(), func(b *testing.B) {
			l := openLog(b, b.TempDir(), Options{Sync: policy, Logger: testLogger(b)})
			payload := make([]byte, 100)
			ctx := context.Background()
			var (
				mu  sync.Mutex
				lsn uint64
			)
			b.SetBytes(int64(len(payload)))
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					lsn++
					mine := lsn
					err := l.Append(Record{Term: 1, LSN: mine, Payload: payload})
					mu.Unlock()
					if err != nil {
						b.Error(err)
						return
					}
					if err := l.WaitDurable(ctx, mine); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(l.Stats().Syncs)/float64(b.N), "syncs/op")
		})
	}
}

// BenchmarkRead reads 100-byte records back through a Reader.
func BenchmarkRead(b *testing.B) {
	l := openLog(b, b.TempDir(), Options{Sync: SyncNone, Logger: testLogger(b)})
	payload := make([]byte, 100)
	batch := make([]Record, 0, 1000)
	const n = 200_000
	for lsn := uint64(1); lsn <= n; lsn++ {
		batch = append(batch, Record{Term: 1, LSN: lsn, Payload: payload})
		if len(batch) == cap(batch) {
			if err := l.AppendBatch(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	r, err := l.NewReader(1)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { r.Close() }()
	for b.Loop() {
		if _, err := r.Next(); errors.Is(err, io.EOF) {
			r.Close()
			if r, err = l.NewReader(1); err != nil {
				b.Fatal(err)
			}
		} else if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenNew creates new logs and parks them, 16 at a time, as a
// node does for each replica of a table created with many partitions.
func BenchmarkOpenNew(b *testing.B) {
	root := b.TempDir()
	var n atomic.Int64
	b.SetParallelism(8) // 16 on 2 CPUs, the node's openWorkers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			dir := filepath.Join(root, strconv.FormatInt(n.Add(1), 10))
			l, err := Open(dir, Options{Sync: SyncInterval, NoLock: true, Logger: testLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Park(); err != nil {
				b.Fatal(err)
			}
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
