package suite

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zeppelin-kv/zeppelin/zpbench/runner"
)

// loadSystem writes what the read cells of sys read: zpbench's records
// (through the native protocol for zpnode, which its RESP front serves
// from the same table), and redis-benchmark's keys where it reads them.
func loadSystem(ctx context.Context, cfg *Config, sys *system, sr *SystemResult) error {
	if zpbenchReads(cfg, sys) {
		lr, err := loadKeyspace(ctx, cfg, sys)
		if err != nil {
			return err
		}
		sr.Load = &lr
		sr.LoadCommand = fmt.Sprintf("zpbench load %s --keyspace %d --value-size %d --batch %d --conns %d --seed %d",
			targetArgs(cfg, sys), cfg.Keyspace, cfg.ValueSize, loadBatch, loadConns, cfg.Seed)
	}
	if measures(cfg, sys.def, ClientRedisBenchmark, "get") && !clusterMode(sys) {
		lr, err := loadBenchKeys(ctx, cfg, sys.respAddrs[0])
		if err != nil {
			return err
		}
		sr.BenchLoad = &lr
		cfg.Log.Info("loaded redis-benchmark keys", "system", sys.def.Name, "records", lr.Records, "records/s", int(lr.Rate()))
	}
	return nil
}

// zpbenchReads reports whether a zpbench client (its own target or the
// cluster client) reads sys's records.
func zpbenchReads(cfg *Config, sys *system) bool {
	for _, op := range cfg.Ops {
		if needsRecords(op) && (measures(cfg, sys.def, ClientZpbench, op) || measures(cfg, sys.def, ClientZpbenchCluster, op)) {
			return true
		}
	}
	return false
}

// benchKey is redis-benchmark's key i with -r: "key:" and __rand_int__
// expanded to 12 digits.
func benchKey(i uint64) string { return fmt.Sprintf("key:%012d", i) }

// loadBenchKeys writes redis-benchmark's keys key:000000000000 ..
// key:<keyspace-1> on the single RESP server at addr, so that its GET
// cells read values (of 'x's, as its SET writes) rather than misses. In
// pipelines of SETs, not MSET: the keys are in different slots. Only for
// systems redis-benchmark reaches without --cluster: in cluster mode it
// puts a random hash tag in every key, so its GETs read misses whatever
// was written.
func loadBenchKeys(ctx context.Context, cfg *Config, addr string) (runner.LoadResult, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: loadConns, DisableIdentity: true,
		ReadTimeout: 4 * cfg.Timeout, WriteTimeout: 4 * cfg.Timeout})
	defer rdb.Close()
	value := bytes.Repeat([]byte("x"), cfg.ValueSize)
	var next atomic.Uint64
	start := time.Now()
	// The first failure stops every loader: a partial load would make
	// the GET cells measure misses.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range loadConns {
		wg.Go(func() {
			for ctx.Err() == nil {
				from := next.Add(loadBatch) - loadBatch
				if from >= cfg.Keyspace {
					return
				}
				pipe := rdb.Pipeline()
				for i := from; i < min(from+loadBatch, cfg.Keyspace); i++ {
					pipe.Set(ctx, benchKey(i), value, 0)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					cancel(fmt.Errorf("load redis-benchmark keys at %s: %w", addr, err))
				}
			}
		})
	}
	wg.Wait()
	return runner.LoadResult{Records: cfg.Keyspace, Elapsed: time.Since(start)}, context.Cause(ctx)
}
