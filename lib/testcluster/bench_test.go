package testcluster_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
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
