package server

import (
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/promexport"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// metrics are the node's Prometheus metrics. Request counters and latency
// are updated per request; everything about replicas, RocksDB and the
// binlog is read from them when Prometheus scrapes.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	slow     prometheus.Counter
	// tableAuthFailures counts data commands refused for a table's
	// password: none, or a wrong one (checkTablePassword).
	tableAuthFailures prometheus.Counter
	// series caches, per table and command, the series observe updates
	// on every request: looking them up by label values hashes and
	// compares the labels each time.
	series sync.Map // seriesKey -> *requestSeries
}

type seriesKey struct{ table, cmd string }

// requestSeries are the series of one table and command: its latency, and
// its count of OK answers (other codes are rare, and looked up).
type requestSeries struct {
	latency prometheus.Observer
	ok      prometheus.Counter
}

// seriesOf returns the series of table and cmd.
func (m *metrics) seriesOf(table, cmd string) *requestSeries {
	k := seriesKey{table, cmd}
	if rs, ok := m.series.Load(k); ok {
		return rs.(*requestSeries)
	}
	rs := &requestSeries{
		latency: m.latency.WithLabelValues(table, cmd),
		ok:      m.requests.WithLabelValues(table, cmd, zppb.Code_OK.String()),
	}
	actual, _ := m.series.LoadOrStore(k, rs)
	return actual.(*requestSeries)
}

// observe counts one request and its latency.
func (m *metrics) observe(table, cmd string, code zppb.Code, d time.Duration) {
	rs := m.seriesOf(table, cmd)
	if code == zppb.Code_OK {
		rs.ok.Inc()
	} else {
		m.requests.WithLabelValues(table, cmd, code.String()).Inc()
	}
	rs.latency.Observe(d.Seconds())
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zeppelin_node_requests_total",
			Help: "Requests served, by table, command and status code.",
		}, []string{"table", "command", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zeppelin_node_request_duration_seconds",
			Help:    "Time to serve a request, by table and command (BINLOG_PULL long-polls).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 17), // 50µs .. 3.3s
		}, []string{"table", "command"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zeppelin_node_received_bytes_total",
			Help: "Bytes of request frames received.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zeppelin_node_sent_bytes_total",
			Help: "Bytes of response frames sent.",
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zeppelin_node_slow_requests_total",
			Help: "Requests that took at least the slow-log threshold.",
		}),
		tableAuthFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zeppelin_node_table_auth_failures_total",
			Help: "Data commands and RESP AUTHs refused for a table's password: none given, a wrong one, or too many wrong ones from the address.",
		}),
	}
	m.reg = promexport.NewRegistry(m.requests, m.latency, m.bytesIn, m.bytesOut, m.slow, m.tableAuthFailures, &nodeCollector{s: s})
	return m
}

func (m *metrics) onBytes(in, out int) {
	m.bytesIn.Add(float64(in))
	m.bytesOut.Add(float64(out))
}

var cmdOneof = (&zppb.Request{}).ProtoReflect().Descriptor().Oneofs().ByName("cmd")

// commandName is the request's command as its field name ("set", "mget",
// "binlog_pull"), or "none".
func commandName(req *zppb.Request) string {
	if req.Cmd == nil {
		return "none"
	}
	// The oneof's Go type names the command: asking protoreflect for the
	// field on every request costs more than the lookup.
	t := reflect.TypeOf(req.Cmd)
	if name, ok := commandNames.Load(t); ok {
		return name.(string)
	}
	name := "none"
	if fd := req.ProtoReflect().WhichOneof(cmdOneof); fd != nil {
		name = string(fd.Name())
	}
	commandNames.Store(t, name)
	return name
}

// commandNames maps each oneof wrapper type of Request.cmd to its field
// name.
var commandNames sync.Map

// requestKey is the key a request names, if it names one, for the slow log.
func requestKey(req *zppb.Request) []byte {
	msg := req.ProtoReflect()
	fd := msg.WhichOneof(cmdOneof)
	if fd == nil {
		return nil
	}
	sub := msg.Get(fd).Message()
	if kf := sub.Descriptor().Fields().ByName("key"); kf != nil && kf.Kind() == protoreflect.BytesKind {
		return sub.Get(kf).Bytes()
	}
	return nil
}

// nodeCollector reads the replicas' state at scrape time.
type nodeCollector struct{ s *Server }

var (
	descEpoch = prometheus.NewDesc("zeppelin_node_epoch", "Topology epoch the node runs.", nil, nil)
	descLease = prometheus.NewDesc("zeppelin_node_master_lease_valid",
		"1 while the node may serve as a master (its lease from meta is valid).", nil, nil)
	descLSN = prometheus.NewDesc("zeppelin_node_replica_lsn",
		"Last binlog record of a replica.", []string{"table", "partition", "role"}, nil)
	descApplied = prometheus.NewDesc("zeppelin_node_replica_applied_lsn",
		"Last binlog record a replica's DB reflects.", []string{"table", "partition"}, nil)
	descLag = prometheus.NewDesc("zeppelin_node_replication_lag_records",
		"Records a slave is behind its master (on a master: its slowest slave).", []string{"table", "partition", "role"}, nil)
	descBinlog = prometheus.NewDesc("zeppelin_node_binlog_bytes",
		"Bytes of a replica's binlog on disk.", []string{"table", "partition"}, nil)
	descSST = prometheus.NewDesc("zeppelin_node_rocksdb_sst_bytes",
		"Bytes of a replica's SST files.", []string{"table", "partition"}, nil)
	descMemtable = prometheus.NewDesc("zeppelin_node_rocksdb_memtable_bytes",
		"Bytes of a replica's memtables.", []string{"table", "partition"}, nil)
	descPending = prometheus.NewDesc("zeppelin_node_rocksdb_pending_compaction_bytes",
		"Bytes RocksDB estimates compaction must rewrite, per replica.", []string{"table", "partition"}, nil)
	descKeys = prometheus.NewDesc("zeppelin_node_rocksdb_estimated_keys",
		"RocksDB's estimate of a replica's keys (expired ones not yet dropped included).", []string{"table", "partition"}, nil)
	descFullSyncTotal = prometheus.NewDesc("zeppelin_node_fullsync_bytes",
		"Bytes of the checkpoint of a replica's current or last full sync.", []string{"table", "partition"}, nil)
	descFullSyncFetched = prometheus.NewDesc("zeppelin_node_fullsync_fetched_bytes",
		"Bytes a replica's current or last full sync has transferred.", []string{"table", "partition"}, nil)
	descCacheHits = prometheus.NewDesc("zeppelin_node_block_cache_hits_total",
		"RocksDB block cache hits, of every replica since the node started.", nil, nil)
	descCacheMisses = prometheus.NewDesc("zeppelin_node_block_cache_misses_total",
		"RocksDB block cache misses, of every replica since the node started.", nil, nil)
	descCacheUsage = prometheus.NewDesc("zeppelin_node_block_cache_usage_bytes",
		"Bytes in the shared block cache.", nil, nil)
	descCacheCapacity = prometheus.NewDesc("zeppelin_node_block_cache_capacity_bytes",
		"Size of the shared block cache.", nil, nil)
	descMallocTrims = prometheus.NewDesc("zeppelin_node_malloc_trims_total",
		"Times the node returned the C allocator's free memory to the OS (malloc_trim, every --malloc-trim-interval).", nil, nil)
	descMallocTrimSeconds = prometheus.NewDesc("zeppelin_node_malloc_trim_seconds_total",
		"Time those trims took; each holds the allocator's arena locks while it runs.", nil, nil)
	descMemtables = prometheus.NewDesc("zeppelin_node_memtable_bytes",
		"Bytes of the memtables of the replicas open now (RocksDB's rocksdb.cur-size-all-mem-tables, summed).", nil, nil)
	descTableReaders = prometheus.NewDesc("zeppelin_node_table_readers_bytes",
		"Bytes of the SST readers of the replicas open now, outside the block cache (RocksDB's rocksdb.estimate-table-readers-mem, summed).", nil, nil)
	descParked = prometheus.NewDesc("zeppelin_node_replicas_parked",
		"Replicas whose RocksDB is closed because nothing used it for --idle-close; the next request reopens it.", nil, nil)
	descWatched = prometheus.NewDesc("zeppelin_node_slaves_watched",
		"Slave replicas of idle partitions that hold no connection of their own: the node waits for them in one BINLOG_WATCH per master node.", nil, nil)
	descRequestIDs = prometheus.NewDesc("zeppelin_node_request_ids",
		"Write request ids the replicas open now remember to answer retries (at most 65,536 per replica, about 76 bytes each).", nil, nil)
	descBuild = prometheus.NewDesc("zeppelin_node_build_info",
		"Always 1; the labels say which build the node runs: its version (Makefile ZP_VERSION, else what Go "+
			"recorded; as zpnode --version prints it), the linked RocksDB library's version, and the RocksDB build "+
			"the binary was stamped with (Makefile ZP_ROCKSDB_BUILD; empty when built without it).",
		nil, prometheus.Labels{"version": buildinfo.Version, "rocksdb_version": engine.RocksDBVersion(), "rocksdb_build": buildinfo.RocksDB})
	descDurability = prometheus.NewDesc("zeppelin_node_durability_info",
		"Always 1; the labels say what an acknowledged write survives: the binlog fsync policy and interval, "+
			"and whether the replicas' RocksDB write-ahead log is on (off, on, mixed; none when no replica is open).",
		[]string{"binlog_fsync", "binlog_fsync_interval", "rocksdb_wal"}, nil)
	descRedisConns = prometheus.NewDesc("zeppelin_node_redis_connections",
		"Open connections of the Redis protocol (RESP) front.", nil, nil)
	descRedisAccepted = prometheus.NewDesc("zeppelin_node_redis_connections_accepted_total",
		"Connections the RESP front accepted.", nil, nil)
	descRedisCommands = prometheus.NewDesc("zeppelin_node_redis_commands_total",
		"Commands the RESP front processed, connection and cluster commands included "+
			"(data commands also count in zeppelin_node_requests_total as the native request they become).", nil, nil)
	descConns = prometheus.NewDesc("zeppelin_node_connections",
		"Connections held, both protocols together (bounded by --max-conns and, per remote IP, --max-conns-per-addr).", nil, nil)
	descConnsRefused = prometheus.NewDesc("zeppelin_node_connections_refused_total",
		"Connections closed at once because they were over --max-conns or --max-conns-per-addr.", nil, nil)
)

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEpoch, descLease, descLSN, descApplied, descLag, descBinlog, descSST,
		descMemtable, descPending, descKeys, descFullSyncTotal, descFullSyncFetched, descCacheHits, descCacheMisses,
		descCacheUsage, descCacheCapacity, descMallocTrims, descMallocTrimSeconds, descMemtables, descTableReaders, descParked, descWatched, descRequestIDs, descBuild, descDurability, descRedisConns, descRedisAccepted, descRedisCommands} {
		ch <- d
	}
	ch <- descConns
	ch <- descConnsRefused
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descEpoch, float64(s.topo.Load().epoch))
	lease := 0.0
	if ok, _ := s.lease.valid(time.Now()); ok {
		lease = 1
	}
	gauge(descLease, lease)
	var memtables, readers uint64
	ids, parked := 0, 0
	walOn, walOff := 0, 0
	for k, r := range s.replicas.snapshot() {
		part := strconv.FormatUint(uint64(k.id), 10)
		info := r.Info()
		gauge(descLSN, float64(info.Lsn), k.table, part, info.Role)
		gauge(descApplied, float64(info.AppliedLsn), k.table, part)
		gauge(descLag, float64(info.LagRecords), k.table, part, info.Role)
		ids += r.RequestIDs()
		if r.Parked() {
			parked++
		}
		_, binlogBytes := r.Sizes()
		gauge(descBinlog, float64(binlogBytes), k.table, part)
		if st, err := r.EngineStats(); err == nil {
			gauge(descSST, float64(st.SSTBytes), k.table, part)
			gauge(descMemtable, float64(st.MemtableBytes), k.table, part)
			gauge(descPending, float64(st.PendingCompact), k.table, part)
			gauge(descKeys, float64(st.EstimatedKeys), k.table, part)
			memtables += st.MemtableBytes
			readers += st.TableReaderBytes
			if st.WALDisabled {
				walOff++
			} else {
				walOn++
			}
		}
		if fs := info.Fullsync; fs != nil {
			gauge(descFullSyncTotal, float64(fs.BytesTotal), k.table, part)
			gauge(descFullSyncFetched, float64(fs.BytesFetched), k.table, part)
		}
	}
	if s.shared != nil {
		st := s.shared.Stats()
		ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(st.BlockCacheHits))
		ch <- prometheus.MustNewConstMetric(descCacheMisses, prometheus.CounterValue, float64(st.BlockCacheMisses))
		gauge(descCacheUsage, float64(st.BlockCacheUsage))
		gauge(descCacheCapacity, float64(st.BlockCacheCapacity))
		ch <- prometheus.MustNewConstMetric(descMallocTrims, prometheus.CounterValue, float64(st.MallocTrims))
		ch <- prometheus.MustNewConstMetric(descMallocTrimSeconds, prometheus.CounterValue, st.MallocTrimTime.Seconds())
	}
	gauge(descMemtables, float64(memtables))
	gauge(descTableReaders, float64(readers))
	gauge(descParked, float64(parked))
	watched, _ := s.watch.Watching()
	gauge(descWatched, float64(watched))
	gauge(descRequestIDs, float64(ids))
	gauge(descBuild, 1)
	gauge(descDurability, 1, s.cfg.Binlog.Sync.String(), syncInterval(s.cfg.Binlog).String(), walState(walOn, walOff))
	if s.redis != nil {
		st := s.redis.Stats()
		gauge(descRedisConns, float64(st.Connections))
		ch <- prometheus.MustNewConstMetric(descRedisAccepted, prometheus.CounterValue, float64(st.Accepted))
		ch <- prometheus.MustNewConstMetric(descRedisCommands, prometheus.CounterValue, float64(st.Commands))
	}
	gauge(descConns, float64(s.gate.Held()))
	ch <- prometheus.MustNewConstMetric(descConnsRefused, prometheus.CounterValue, float64(s.gate.Refused()))
}

// syncInterval is the binlog's fsync period as the binlog applies it (its
// default when o leaves it zero).
func syncInterval(o binlog.Options) time.Duration {
	if o.SyncInterval <= 0 {
		return binlog.DefaultSyncInterval
	}
	return o.SyncInterval
}

// walState sums up the replicas' RocksDB WAL setting.
func walState(on, off int) string {
	switch {
	case on > 0 && off > 0:
		return "mixed"
	case on > 0:
		return "on"
	case off > 0:
		return "off"
	}
	return "none"
}
