package engine

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// BenchmarkIdleCost measures what an idle partition replica costs a node
// (issue 16): resident memory, file descriptors and open time per store, for
// N stores opened side by side.
//
//   - db/...: a RocksDB per replica, opened with Open as zpnode opens them
//     (a Shared with the node's defaults, DisableWAL). Each DB takes one
//     small write and a flush, so that it has table files like a real
//     replica; the figures are taken then. The DBs are then closed and
//     reopened, as after a restart: ms-open/store is that reopen.
//   - cf/...: the same N replicas as column families of one RocksDB, with
//     the same options (newRocksOptions), each taking one write and a
//     flush; the applied positions sit in one shared "meta" family.
//   - binlog/...: N binlogs (lib/binlog, the node's default options), each
//     with one record, since a replica is a DB and a binlog.
//
// The db variants change one option at a time (see idleVariants) to show
// where the cost of a DB goes; "lean" combines them.
//
// Every measurement runs in a fresh child process (this test binary,
// re-executed by TestMain), because memory freed by an earlier measurement
// stays with the allocator and would hide part of the next one's growth.
// RSS is VmRSS after opening minus VmRSS before, after a Go GC that returns
// what it can; fds is the growth of /proc/self/fd. The run logs where the
// descriptors go (LOCK, LOG, MANIFEST, WAL, table files, directories,
// binlog segments) and the write buffer manager's charge.
//
// kept-writes/20 is how many of 20 writes to one store, made once all are
// open, its memtable still holds: fewer than 20 means the write buffer
// manager's budget is used up by idle memtables and it flushes on writes.
// docs/architecture.md has the figures of a run.
//
//	go test -run - -bench IdleCost -benchtime 1x -timeout 60m ./lib/engine
func BenchmarkIdleCost(b *testing.B) {
	// It runs for about 25 minutes: only when asked for by name, not with
	// every benchmark of the package (make bench runs -bench .).
	if testing.Short() || !strings.Contains(flag.Lookup("test.bench").Value.String(), "IdleCost") {
		b.Skip("opens thousands of stores; run with -bench IdleCost")
	}
	type bench struct {
		kind    string // db, cf or binlog
		variant string // a key of idleVariants
		n       int
	}
	var benches []bench
	// 1000 DBs take about two minutes here and hold almost 10,000 fds; the
	// machine allows 20,000.
	for _, v := range idleVariantNames() {
		benches = append(benches, bench{"db", v, 1000})
	}
	// Column families stop at 1000: RocksDB 7.8 rewrites its OPTIONS file,
	// with every family's options (about 4 KB each), for each family it
	// creates, so creating N costs O(N^2): 1000 take minutes here, 10,000
	// would write some 200 GB.
	benches = append(benches, bench{"cf", "node", 1000}, bench{"cf", "lean", 1000})
	// A binlog holds 2 fds: 9000 fit under the 20,000 a process may have
	// here.
	for _, n := range []int{1000, 9000} {
		benches = append(benches, bench{"binlog", "node", n})
	}
	for _, bc := range benches {
		b.Run(fmt.Sprintf("%s/%s/n=%d", bc.kind, bc.variant, bc.n), func(b *testing.B) {
			var create, reopen idleCostResult
			for b.Loop() {
				spec := idleCostSpec{Kind: bc.kind, Variant: bc.variant, N: bc.n, Dir: b.TempDir()}
				spec.Phase = "create"
				create = runIdleCostChild(b, spec)
				spec.Phase = "reopen"
				reopen = runIdleCostChild(b, spec)
			}
			n := float64(bc.n)
			b.ReportMetric(float64(create.RSS)/n, "rss-bytes/store")
			b.ReportMetric(float64(create.FDs)/n, "fds/store")
			b.ReportMetric(float64(create.OpenNanos)/1e6/n, "ms-create/store")
			b.ReportMetric(float64(reopen.OpenNanos)/1e6/n, "ms-open/store")
			b.ReportMetric(float64(create.DiskBytes)/n, "disk-bytes/store")
			if bc.kind != "binlog" {
				b.ReportMetric(float64(create.WBM)/n, "wbm-bytes/store")
				b.ReportMetric(float64(create.KeptWrites), "kept-writes/20")
			}
			b.Logf("after create+write+flush: %s", create.summary(bc.n))
			b.Logf("after reopen:             %s", reopen.summary(bc.n))
		})
	}
}

// idleVariants are the option changes BenchmarkIdleCost tries, each on top
// of what the node does ("node").
var idleVariants = map[string]func(*Options){
	"node": func(*Options) {},
	// No statistics. Before the DBs of a Shared shared one statistics
	// object, each had its own, and this saved about 590 KB a DB.
	"no-tickers": func(o *Options) { o.tuning.noTickers = true },
	// The memtable bloom filter is sized from write_buffer_size and
	// allocated, zeroed, with every memtable, empty or not.
	"no-memtable-bloom": func(o *Options) {
		o.tuning.tune = func(ro *grocksdb.Options) { ro.SetMemTablePrefixBloomSizeRatio(0) }
	},
	"max-open-files=16": func(o *Options) { o.MaxOpenFiles = 16 },
	// The table cache has 2^6 shards by default.
	"table-cache-1-shard": func(o *Options) {
		o.tuning.tune = func(ro *grocksdb.Options) { ro.SetTableCacheNumshardbits(0) }
	},
	// RocksDB's LOG: one file per DB whatever the level; fewer lines.
	"info-log-fatal": func(o *Options) {
		o.tuning.tune = func(ro *grocksdb.Options) { ro.SetInfoLogLevel(grocksdb.FatalInfoLogLevel) }
	},
	// The periodic stats dump to LOG and the in-memory stats history.
	"no-stats-periodic": func(o *Options) {
		o.tuning.tune = func(ro *grocksdb.Options) {
			ro.SetStatsDumpPeriodSec(0)
			ro.SetStatsPersistPeriodSec(0)
		}
	},
	"wal-on": func(o *Options) { o.DisableWAL = false },
	// Disk only: the open MANIFEST is preallocated, 4 MiB by default.
	"manifest-prealloc-64k": func(o *Options) {
		o.tuning.tune = func(ro *grocksdb.Options) { ro.SetManifestPreallocationSize(64 << 10) }
	},
	// Everything above that cuts a cost, together.
	"lean": func(o *Options) {
		o.tuning.noTickers = true
		o.MaxOpenFiles = 16
		o.tuning.tune = func(ro *grocksdb.Options) {
			ro.SetMemTablePrefixBloomSizeRatio(0)
			ro.SetTableCacheNumshardbits(0)
			ro.SetInfoLogLevel(grocksdb.FatalInfoLogLevel)
			ro.SetStatsDumpPeriodSec(0)
			ro.SetStatsPersistPeriodSec(0)
			ro.SetManifestPreallocationSize(64 << 10)
		}
	},
}

// idleVariantNames returns the variants in a stable order, "node" first.
func idleVariantNames() []string {
	var names []string
	for k := range idleVariants {
		if k != "node" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return append([]string{"node"}, names...)
}

// idleOptions returns the options zpnode opens a replica's DB with
// (zpnode/replica.openDB), changed by variant, on a new Shared as zpnode
// makes one; the caller closes it.
func idleOptions(variant string) (Options, error) {
	v, ok := idleVariants[variant]
	if !ok {
		return Options{}, fmt.Errorf("unknown variant %q", variant)
	}
	// zpnode/server passes only the block cache size, 256 MiB by default.
	s, err := NewShared(SharedOptions{BlockCacheSize: 256 << 20})
	if err != nil {
		return Options{}, err
	}
	o := Options{Shared: s, Logger: slog.New(slog.DiscardHandler), DisableWAL: true, tuning: &rocksTuning{}}
	v(&o)
	return o, nil
}

// idleCostEnv carries an idleCostSpec to a child process.
const idleCostEnv = "ZEPPELIN_IDLECOST_CHILD"

// idleCostSpec is one measurement, made by one child process.
type idleCostSpec struct {
	Kind    string
	Variant string
	N       int
	Dir     string
	Phase   string // "create": create, write, flush; "reopen": open what create left
	Out     string // where the child writes its idleCostResult
}

// idleCostResult is what the child measured: growth across opening the N
// stores.
type idleCostResult struct {
	RSS, RSSAnon, RSSFile int64 // bytes
	FDs                   int
	FDKinds               map[string]int
	Threads               int
	OpenNanos             int64  // total time spent opening (and, for create, writing and flushing)
	WBM                   uint64 // write buffer manager charge
	OptionsFileBytes      int64  // size of RocksDB's OPTIONS file (cf: one for all families)
	CreateOneNanos        int64  // cf: creating one more family in a DB holding N
	DiskBytes             int64  // blocks allocated under the stores' directories
	// KeptWrites: of idleWrites single-record writes to one store made
	// once the N stores were open, how many its memtable holds. Fewer than
	// idleWrites: the write buffer manager found its budget used up by idle
	// memtables and flushed on writes.
	KeptWrites int
}

// idleWrites is how many writes the create phase makes to one store once
// all are open.
const idleWrites = 20

func (r idleCostResult) summary(n int) string {
	var kinds []string
	for k, v := range r.FDKinds {
		kinds = append(kinds, fmt.Sprintf("%s %.2f", k, float64(v)/float64(n)))
	}
	sort.Strings(kinds)
	s := fmt.Sprintf("per store: rss %.0f B (anon %.0f, file %.0f), fds %.2f [%s], wbm %.0f B, open %.2f ms; threads +%d",
		float64(r.RSS)/float64(n), float64(r.RSSAnon)/float64(n), float64(r.RSSFile)/float64(n),
		float64(r.FDs)/float64(n), strings.Join(kinds, ", "), float64(r.WBM)/float64(n),
		float64(r.OpenNanos)/1e6/float64(n), r.Threads)
	if r.OptionsFileBytes > 0 {
		s += fmt.Sprintf("; OPTIONS file %d B", r.OptionsFileBytes)
	}
	s += fmt.Sprintf("; disk %.0f B", float64(r.DiskBytes)/float64(n))
	if r.KeptWrites > 0 { // the create phase of a RocksDB store
		s += fmt.Sprintf("; writes kept in the memtable %d of %d", r.KeptWrites, idleWrites)
	}
	if r.CreateOneNanos > 0 {
		s += fmt.Sprintf("; one more family %.1f ms", float64(r.CreateOneNanos)/1e6)
	}
	return s
}

// runIdleCostChild runs spec in a child process and returns its result.
func runIdleCostChild(b *testing.B, spec idleCostSpec) idleCostResult {
	b.Helper()
	spec.Out = filepath.Join(b.TempDir(), "result.json")
	js, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), idleCostEnv+"="+string(js))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("child %s/%s/%d %s: %v\n%s", spec.Kind, spec.Variant, spec.N, spec.Phase, err, out)
	}
	data, err := os.ReadFile(spec.Out)
	if err != nil {
		b.Fatal(err)
	}
	var r idleCostResult
	if err := json.Unmarshal(data, &r); err != nil {
		b.Fatal(err)
	}
	return r
}

func TestMain(m *testing.M) {
	if js := os.Getenv(idleCostEnv); js != "" {
		if err := idleCostChild(js); err != nil {
			fmt.Fprintln(os.Stderr, "idle cost child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// idleCostChild makes the measurement spec describes and writes its result.
func idleCostChild(js string) error {
	var spec idleCostSpec
	if err := json.Unmarshal([]byte(js), &spec); err != nil {
		return err
	}
	var (
		r   idleCostResult
		err error
	)
	switch spec.Kind {
	case "db":
		r, err = idleDBs(spec)
	case "cf":
		r, err = idleFamilies(spec)
	case "binlog":
		r, err = idleBinlogs(spec)
	default:
		err = fmt.Errorf("unknown kind %q", spec.Kind)
	}
	if err != nil {
		return err
	}
	out, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return os.WriteFile(spec.Out, out, 0o644)
}

// idleRecord is the one write each store takes.
func idleRecord(i int) *zppb.WriteRecord {
	return &zppb.WriteRecord{Mutations: []*zppb.Mutation{{
		Kind: zppb.Mutation_PUT, Key: fmt.Appendf(nil, "key%05d", i), Value: bytes.Repeat([]byte("v"), 100),
	}}}
}

// idleDBs opens spec.N DBs, one directory each, as zpnode does.
func idleDBs(spec idleCostSpec) (idleCostResult, error) {
	opts, err := idleOptions(spec.Variant)
	if err != nil {
		return idleCostResult{}, err
	}
	s := opts.Shared
	defer s.Close()
	before, err := sampleProc()
	if err != nil {
		return idleCostResult{}, err
	}
	dbs := make([]*DB, 0, spec.N)
	defer func() {
		for _, d := range dbs {
			d.Close()
		}
	}()
	// The replicas' directories, which zpnode creates: not timed.
	rdir := func(i int) string { return filepath.Join(spec.Dir, fmt.Sprintf("%05d", i)) }
	for i := range spec.N {
		if err := os.MkdirAll(rdir(i), 0o755); err != nil {
			return idleCostResult{}, err
		}
	}
	elapsed, err := timeEach(spec.N, func(i int) error {
		d, err := Open(filepath.Join(rdir(i), "db"), opts)
		if err != nil {
			return err
		}
		dbs = append(dbs, d)
		if spec.Phase != "create" {
			return nil
		}
		if err := d.Apply(1, 1, idleRecord(i)); err != nil {
			return err
		}
		return d.Flush()
	})
	if err != nil {
		return idleCostResult{}, err
	}
	r, err := measured(before, elapsed, spec.Dir)
	if err != nil {
		return r, err
	}
	r.WBM = s.Stats().WriteBufferUsage
	if spec.Phase == "create" {
		d := dbs[0]
		r.KeptWrites, err = keptWrites(d.db, d.data, func(i int) error {
			return d.Apply(uint64(2+i), 1, idleRecord(i))
		})
	}
	return r, err
}

// idleFamilies opens spec.N replicas as column families of one DB, with
// the options a DB of its own would have. A replica's applied position is a
// key of the shared "meta" family, written in the same batch as its data.
func idleFamilies(spec idleCostSpec) (idleCostResult, error) {
	opts, err := idleOptions(spec.Variant)
	if err != nil {
		return idleCostResult{}, err
	}
	s := opts.Shared
	defer s.Close()
	if opts, err = opts.withDefaults(); err != nil {
		return idleCostResult{}, err
	}
	// As a DB the Shared grants a memtable bloom filter (the first few).
	opts.memtableBloom = true
	ropts, _, err := newRocksOptions(opts)
	if err != nil {
		return idleCostResult{}, err
	}
	defer ropts.Destroy()
	metaOpts := newMetaOptions()
	defer metaOpts.Destroy()

	names := []string{"default", "meta"}
	cfOpts := []*grocksdb.Options{ropts, metaOpts}
	for i := range spec.N {
		names = append(names, fmt.Sprintf("r%05d", i))
		cfOpts = append(cfOpts, ropts)
	}
	dir := filepath.Join(spec.Dir, "db")

	before, err := sampleProc()
	if err != nil {
		return idleCostResult{}, err
	}
	// Creating all families with the open writes RocksDB's OPTIONS file
	// once; creating them one by one (CreateColumnFamily) rewrites it, with
	// every family's options, each time: CreateOneNanos below is that cost.
	start := time.Now()
	db, cfs, err := grocksdb.OpenDbColumnFamilies(ropts, dir, names, cfOpts)
	if err != nil {
		return idleCostResult{}, err
	}
	defer func() {
		for _, cf := range cfs {
			cf.Destroy()
		}
		db.Close()
	}()
	if spec.Phase == "create" {
		wo := grocksdb.NewDefaultWriteOptions()
		defer wo.Destroy()
		wo.DisableWAL(opts.DisableWAL)
		fo := grocksdb.NewDefaultFlushOptions()
		defer fo.Destroy()
		fo.SetWait(true)
		for i := range spec.N {
			cf := cfs[2+i]
			m := idleRecord(i).Mutations[0]
			wb := grocksdb.NewWriteBatch()
			wb.PutCF(cf, dataKey(m.Key), encodeValue(m.Value, 0))
			wb.PutCF(cfs[1], fmt.Appendf(nil, "m/applied/%05d", i), encodeApplied(1, 1))
			err := db.Write(wo, wb)
			wb.Destroy()
			if err != nil {
				return idleCostResult{}, err
			}
			if err := db.FlushCF(cf, fo); err != nil {
				return idleCostResult{}, err
			}
		}
		if err := db.FlushCF(cfs[1], fo); err != nil {
			return idleCostResult{}, err
		}
	}
	m, err := measured(before, time.Since(start), spec.Dir)
	if err != nil {
		return idleCostResult{}, err
	}
	m.WBM = s.Stats().WriteBufferUsage
	m.OptionsFileBytes = optionsFileSize(dir)
	if spec.Phase == "create" {
		wo := grocksdb.NewDefaultWriteOptions()
		defer wo.Destroy()
		wo.DisableWAL(opts.DisableWAL)
		m.KeptWrites, err = keptWrites(db, cfs[2], func(i int) error {
			wb := grocksdb.NewWriteBatch()
			defer wb.Destroy()
			wb.PutCF(cfs[2], dataKey(fmt.Appendf(nil, "more%d", i)), encodeValue([]byte("v"), 0))
			wb.PutCF(cfs[1], []byte("m/applied/00000"), encodeApplied(1, uint64(2+i)))
			return db.Write(wo, wb)
		})
		if err != nil {
			return idleCostResult{}, err
		}
		start := time.Now()
		cf, err := db.CreateColumnFamily(ropts, "one-more")
		if err != nil {
			return idleCostResult{}, err
		}
		m.CreateOneNanos = time.Since(start).Nanoseconds()
		err = db.DropColumnFamily(cf)
		cf.Destroy()
		if err != nil {
			return idleCostResult{}, err
		}
	}
	return m, nil
}

// keptWrites makes idleWrites writes with write and returns how many are
// in the active memtable of the family they write to afterwards: all of
// them, unless the write buffer manager, finding its budget used up,
// switched the memtable (and flushed the old one) before a write. The
// switch happens inside the write, so the count is exact at once.
func keptWrites(db *grocksdb.DB, cf *grocksdb.ColumnFamilyHandle, write func(i int) error) (int, error) {
	for i := range idleWrites {
		if err := write(i); err != nil {
			return 0, err
		}
	}
	return strconv.Atoi(db.GetPropertyCF("rocksdb.num-entries-active-mem-table", cf))
}

// optionsFileSize returns the size of the newest OPTIONS file in dir.
func optionsFileSize(dir string) int64 {
	matches, _ := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	sort.Strings(matches)
	if len(matches) == 0 {
		return 0
	}
	fi, err := os.Stat(matches[len(matches)-1])
	if err != nil {
		return 0
	}
	return fi.Size()
}

// diskUsage returns the bytes of the blocks allocated to the files under
// dir. Call it while the stores are open: RocksDB preallocates the files it
// appends to (the MANIFEST) and gives the space back when it closes them.
func diskUsage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n, err
}

// idleBinlogs opens spec.N binlogs with the node's default options.
func idleBinlogs(spec idleCostSpec) (idleCostResult, error) {
	before, err := sampleProc()
	if err != nil {
		return idleCostResult{}, err
	}
	logs := make([]*binlog.Log, 0, spec.N)
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	elapsed, err := timeEach(spec.N, func(i int) error {
		l, err := binlog.Open(filepath.Join(spec.Dir, fmt.Sprintf("%05d", i), "binlog"), binlog.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		logs = append(logs, l)
		if spec.Phase != "create" {
			return nil
		}
		if err := l.Append(binlog.Record{Term: 1, LSN: 1, Payload: bytes.Repeat([]byte("p"), 120)}); err != nil {
			return err
		}
		return l.Sync()
	})
	if err != nil {
		return idleCostResult{}, err
	}
	return measured(before, elapsed, spec.Dir)
}

// timeEach runs open for stores 0 .. n-1 and returns the time they took.
func timeEach(n int, open func(i int) error) (time.Duration, error) {
	var elapsed time.Duration
	for i := range n {
		start := time.Now()
		if err := open(i); err != nil {
			return 0, err
		}
		elapsed += time.Since(start)
	}
	return elapsed, nil
}

// measured is what this process grew by since before, with the time the
// stores took to open and the disk they use under dir.
func measured(before procSample, elapsed time.Duration, dir string) (idleCostResult, error) {
	after, err := sampleProc()
	if err != nil {
		return idleCostResult{}, err
	}
	r := after.minus(before)
	r.OpenNanos = elapsed.Nanoseconds()
	r.DiskBytes, err = diskUsage(dir)
	return r, err
}

// procSample is this process's memory, threads and descriptors.
type procSample struct {
	rss, rssAnon, rssFile int64
	threads               int
	fds                   map[string]int
}

func (a procSample) minus(b procSample) idleCostResult {
	r := idleCostResult{
		RSS: a.rss - b.rss, RSSAnon: a.rssAnon - b.rssAnon, RSSFile: a.rssFile - b.rssFile,
		Threads: a.threads - b.threads, FDKinds: map[string]int{},
	}
	for k, v := range a.fds {
		if d := v - b.fds[k]; d != 0 {
			r.FDKinds[k] = d
			r.FDs += d
		}
	}
	for k, v := range b.fds {
		if _, ok := a.fds[k]; !ok {
			r.FDKinds[k] = -v
			r.FDs -= v
		}
	}
	return r
}

// sampleProc reads /proc/self after a GC that hands free Go memory back to
// the kernel, so that what remains is what the open stores hold.
func sampleProc() (procSample, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var p procSample
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return p, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch name {
		case "VmRSS":
			p.rss = n << 10
		case "RssAnon":
			p.rssAnon = n << 10
		case "RssFile":
			p.rssFile = n << 10
		case "Threads":
			p.threads = int(n)
		}
	}
	if err := sc.Err(); err != nil {
		return p, err
	}
	p.fds, err = fdKinds()
	return p, err
}

// fdKinds counts this process's descriptors by what they point at.
func fdKinds() (map[string]int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	kinds := map[string]int{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the descriptor ReadDir itself used, now closed
		}
		kinds[fdKind(target)]++
	}
	return kinds, nil
}

// fdKind names what a descriptor's target is, as far as the idle cost
// goes.
func fdKind(target string) string {
	base := filepath.Base(target)
	inBinlog := filepath.Base(filepath.Dir(target)) == "binlog"
	switch {
	case !strings.HasPrefix(target, "/"):
		return "other" // pipes, sockets, eventfds
	case base == "LOCK" && inBinlog:
		return "binlog-lock"
	case base == "LOCK":
		return "lock"
	case base == "LOG":
		return "info-log"
	case strings.HasPrefix(base, "MANIFEST-"):
		return "manifest"
	case strings.HasSuffix(base, ".sst"):
		return "sst"
	case strings.HasSuffix(base, ".log") && inBinlog:
		return "binlog-segment"
	case strings.HasSuffix(base, ".log"):
		return "wal"
	}
	if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		return "dir"
	}
	return "other-file"
}
