package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// BenchmarkReplicatedSet measures SET throughput of 100-byte values on a
// 3-node cluster with 3 replicas, asynchronous and with
// min_sync_replicas=1. Each sub-benchmark starts its own cluster, so run it
// with a fixed count:
//
//	go test -run '^$' -bench ReplicatedSet -benchtime 20000x ./lib/testcluster/
func BenchmarkReplicatedSet(b *testing.B) {
	for _, minSync := range []uint32{0, 1} {
		if os.Getenv("ZP_BENCH_REPLICAS") == "1" && minSync > 0 {
			continue
		}
		b.Run(fmt.Sprintf("min_sync=%d", minSync), func(b *testing.B) {
			c := testcluster.Start(b, testcluster.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), PoolConnsPerAddr: 8})
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "bench", Partitions: 16, Replicas: replicas(), MinSyncReplicas: minSync}); err != nil {
				b.Fatal(err)
			}
			if err := cl.WaitTableWritable(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			value := make([]byte, 100)
			var next atomic.Int64
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := fmt.Appendf(nil, "key:%d", next.Add(1))
					if err := cl.Set(ctx, "bench", k, value, 0); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
		})
	}
}

func replicas() uint32 {
	if os.Getenv("ZP_BENCH_REPLICAS") == "1" {
		return 1
	}
	return 3
}

// BenchmarkMigratePartition measures moving the master replica of one
// partition holding ZP_BENCH_MIGRATE_MB megabytes (default 1024) to a new
// node, and the p99 latency of a foreground load of small SETs and GETs on
// the other partitions before and during the move. Run it once:
//
//	go test -run '^$' -bench MigratePartition -benchtime 1x -timeout 30m ./lib/testcluster/
func BenchmarkMigratePartition(b *testing.B) {
	mb := 1024
	if v := os.Getenv("ZP_BENCH_MIGRATE_MB"); v != "" {
		fmt.Sscan(v, &mb)
	}
	c := testcluster.Start(b, testcluster.Options{Nodes: 4, NodeArgs: []string{"--binlog-max-segments", "4"}})
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), PoolConnsPerAddr: 4, DefaultTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	const partitions = 4
	if _, err := cl.CreateTable(ctx, client.TableSpec{Name: "bench", Partitions: partitions, Replicas: 3}); err != nil {
		b.Fatal(err)
	}
	if err := cl.WaitTableWritable(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	topo, err := cl.Pull(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	p0 := topo.Tables[0].Partitions[0]
	var spare string
	for _, a := range c.NodeAddrs() {
		if a != p0.Master && !slices.Contains(p0.Slaves, a) {
			spare = a
		}
	}

	// Fill partition 0: 64 KiB values, 16 per MSET, 4 loaders.
	value := make([]byte, 64<<10)
	var loaded atomic.Int64
	target := int64(mb) << 20
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; loaded.Load() < target; i++ {
				kvs := make([]client.KeyValue, 16)
				for j := range kvs {
					kvs[j] = client.KeyValue{Key: keyIn(partitions, 0, fmt.Sprintf("big-%d-%d-%d", w, i, j)), Value: value}
				}
				if err := cl.MSet(ctx, "bench", kvs, 0); err != nil {
					b.Error(err)
					return
				}
				loaded.Add(int64(len(kvs) * len(value)))
			}
		}()
	}
	wg.Wait()
	b.Logf("loaded %d MB into partition 0 in %v", loaded.Load()>>20, time.Since(start))

	// Foreground: small SET/GET on the other partitions, latency recorded.
	fg := func(d time.Duration) *hdrhistogram.Histogram {
		h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
		var mu sync.Mutex
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(end); i++ {
					k := keyIn(partitions, uint32(1+i%3), fmt.Sprintf("fg-%d-%d", w, i%500))
					t0 := time.Now()
					var err error
					if i%2 == 0 {
						err = cl.Set(ctx, "bench", k, value[:100], 0)
					} else {
						_, err = cl.Get(ctx, "bench", k)
						if errors.Is(err, status.ErrNotFound) {
							err = nil
						}
					}
					if err != nil {
						continue
					}
					mu.Lock()
					h.RecordValue(time.Since(t0).Microseconds())
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return h
	}
	before := fg(10 * time.Second)

	b.ResetTimer()
	moveStart := time.Now()
	if _, err := cl.Migrate(ctx, "bench", 0, p0.Master, spare, 0); err != nil {
		b.Fatal(err)
	}
	moveDone := make(chan *client.Move, 1)
	go func() {
		for {
			moves, err := cl.MoveStatus(ctx, true)
			if err == nil && len(moves) > 0 && moves[len(moves)-1].State.Ended() {
				moveDone <- &moves[len(moves)-1]
				return
			}
			select {
			case <-ctx.Done():
				moveDone <- nil
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	var during []*hdrhistogram.Histogram
	var m *client.Move
	for m == nil {
		during = append(during, fg(2*time.Second))
		select {
		case m = <-moveDone:
		default:
		}
	}
	moveTime := time.Since(moveStart)
	b.StopTimer()
	if m == nil || m.State != client.MoveDone {
		b.Fatalf("move did not finish: %v", m)
	}
	merged := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	for _, h := range during {
		merged.Merge(h)
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	b.ReportMetric(moveTime.Seconds(), "move-s")
	b.ReportMetric(float64(mb)/moveTime.Seconds(), "MB/s")
	b.ReportMetric(float64(before.ValueAtQuantile(99)), "p99-before-us")
	b.ReportMetric(float64(merged.ValueAtQuantile(99)), "p99-during-us")
	b.Logf("moved %d MB in %v (STUCK %d ms); foreground p50/p99 before %v/%v (%d ops), during %v/%v (%d ops)",
		mb, moveTime, m.StuckMs, us(before.ValueAtQuantile(50)), us(before.ValueAtQuantile(99)), before.TotalCount(),
		us(merged.ValueAtQuantile(50)), us(merged.ValueAtQuantile(99)), merged.TotalCount())
}
