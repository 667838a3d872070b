// Package replica is one partition replica on a node: a RocksDB instance
// (lib/engine) and the binlog (lib/binlog) every write goes through first.
package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/zeppelin-kv/zeppelin/lib/binlog"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Role is what a replica does for its partition.
type Role int

// Roles of a replica.
const (
	Slave Role = iota
	Master
)

func (r Role) String() string {
	if r == Master {
		return "master"
	}
	return "slave"
}

// ErrClosed is returned by operations on a closed replica.
var ErrClosed = errors.New("replica: closed")

// Options configures a replica.
type Options struct {
	// Dir holds the replica: Dir/db and Dir/binlog.
	Dir    string
	Table  string
	ID     uint32
	Shared *engine.Shared
	Binlog binlog.Options
	Logger *slog.Logger
	// Now returns the current time; tests may fix it. Default time.Now.
	Now func() time.Time
}

// Replica is one partition replica. Writes are serialised: each gets the
// next lsn, is appended to the binlog, then applied to the DB together with
// its lsn, so after a crash the DB says exactly which record it reflects and
// the binlog supplies the rest.
type Replica struct {
	opts Options
	db   *engine.DB
	log  *binlog.Log

	mu     sync.Mutex // serialises writes; guards the fields below
	role   Role
	term   uint64
	master string
	closed bool
}

// Open opens (creating if needed) the replica in opts.Dir and replays binlog
// records the DB has not applied yet.
func Open(opts Options) (*Replica, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Logger = opts.Logger.With("table", opts.Table, "partition", opts.ID)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	db, err := engine.Open(filepath.Join(opts.Dir, "db"), engine.Options{Shared: opts.Shared, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("replica %s/%d: %w", opts.Table, opts.ID, err)
	}
	bopts := opts.Binlog
	bopts.Logger = opts.Logger
	log, err := binlog.Open(filepath.Join(opts.Dir, "binlog"), bopts)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("replica %s/%d: %w", opts.Table, opts.ID, err)
	}
	r := &Replica{opts: opts, db: db, log: log}
	if err := r.replay(); err != nil {
		log.Close()
		db.Close()
		return nil, fmt.Errorf("replica %s/%d: replay: %w", opts.Table, opts.ID, err)
	}
	r.term, _ = r.position()
	return r, nil
}

// replay applies the binlog records after the DB's applied lsn.
func (r *Replica) replay() error {
	appliedTerm, applied := r.db.Applied()
	_, last := r.log.Last()
	if last <= applied {
		if last < applied {
			// The DB is ahead of the binlog: the binlog lost a tail it had
			// not synced (fsync none/interval and a machine crash) while
			// RocksDB kept it. Continue numbering after the DB.
			r.opts.Logger.Warn("binlog behind the DB; restarting it after the applied lsn", "binlog_lsn", last, "applied_lsn", applied)
			if err := r.log.Reset(appliedTerm, applied); err != nil {
				return err
			}
		}
		return nil
	}
	rd, err := r.log.NewReader(applied + 1)
	if err != nil {
		return err
	}
	defer rd.Close()
	n := 0
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		wr := &zppb.WriteRecord{}
		if err := proto.Unmarshal(rec.Payload, wr); err != nil {
			return fmt.Errorf("record %d does not parse: %w", rec.LSN, err)
		}
		if err := r.db.Apply(rec.LSN, rec.Term, wr); err != nil {
			return err
		}
		n++
	}
	r.opts.Logger.Info("replayed binlog", "records", n, "from_lsn", applied+1)
	return nil
}

// position returns the (term, lsn) of the last record the replica holds.
func (r *Replica) position() (term, lsn uint64) {
	term, lsn = r.log.Last()
	if t, l := r.db.Applied(); l > lsn {
		term, lsn = t, l
	}
	return term, lsn
}

// SetRole records the replica's role, master and the partition's term from
// the topology.
func (r *Replica) SetRole(role Role, master string, term uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.role, r.master, r.term = role, master, term
}

// Role returns the replica's role and the partition's master address.
func (r *Replica) Role() (Role, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.role, r.master
}

// Update runs fn under the write lock and writes the record it returns, if
// any, through the binlog and the DB. fn sees every write before it, so
// read-modify-write commands are atomic. The write is durable per the
// binlog's sync policy when Update returns nil.
func (r *Replica) Update(ctx context.Context, fn func(v View) (*zppb.WriteRecord, error)) error {
	lsn, err := r.update(fn)
	if err != nil || lsn == 0 {
		return err
	}
	return r.log.WaitDurable(ctx, lsn)
}

func (r *Replica) update(fn func(v View) (*zppb.WriteRecord, error)) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, ErrClosed
	}
	rec, err := fn(View{r})
	if err != nil || rec == nil || len(rec.Mutations) == 0 {
		return 0, err
	}
	payload, err := proto.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("replica: marshal record: %w", err)
	}
	_, last := r.position()
	lsn := last + 1
	if err := r.log.Append(binlog.Record{Term: r.term, LSN: lsn, Payload: payload}); err != nil {
		return 0, fmt.Errorf("replica: binlog append: %w", err)
	}
	if err := r.db.Apply(lsn, r.term, rec); err != nil {
		// Keep binlog and DB in step: the caller is told the write failed,
		// so it must not come back on replay either.
		if terr := r.log.TruncateAfter(lsn - 1); terr != nil {
			r.opts.Logger.Error("cannot undo binlog record after a failed apply", "lsn", lsn, "err", terr)
		}
		return 0, fmt.Errorf("replica: apply: %w", err)
	}
	return lsn, nil
}

// Write writes rec; see Update.
func (r *Replica) Write(ctx context.Context, rec *zppb.WriteRecord) error {
	return r.Update(ctx, func(View) (*zppb.WriteRecord, error) { return rec, nil })
}

// View reads the replica's data.
type View struct{ r *Replica }

// Get returns the value of key and its expiry (unix ms, 0 = never);
// engine.ErrNotFound when absent or expired.
func (v View) Get(key []byte) ([]byte, int64, error) {
	return v.r.db.Get(key, v.r.NowMs())
}

// Get reads key; see View.Get.
func (r *Replica) Get(key []byte) ([]byte, int64, error) {
	return View{r}.Get(key)
}

// Scan returns up to count live keys with exactly hashtag, after cursor.
// A page may come back short with a cursor to continue from.
func (r *Replica) Scan(hashtag, cursor []byte, count int) ([]*zppb.KeyValue, []byte, error) {
	entries, next, err := r.db.Scan(hashtag, cursor, count, r.NowMs())
	if err != nil {
		return nil, nil, err
	}
	kvs := make([]*zppb.KeyValue, len(entries))
	for i, e := range entries {
		kvs[i] = &zppb.KeyValue{Key: e.Key, Value: e.Value}
	}
	return kvs, next, nil
}

// NowMs is the replica's clock in unix milliseconds.
func (r *Replica) NowMs() int64 { return r.opts.Now().UnixMilli() }

// SweepExpired deletes up to limit expired keys after cursor through the
// binlog, so that slaves drop them too. It returns how many it deleted and
// the cursor to continue from (empty when the sweep is through). Only
// masters sweep.
func (r *Replica) SweepExpired(ctx context.Context, cursor []byte, limit int) (int, []byte, error) {
	keys, next, err := r.db.ExpiredKeys(cursor, r.NowMs(), limit)
	if err != nil || len(keys) == 0 {
		return 0, next, err
	}
	n := 0
	err = r.Update(ctx, func(View) (*zppb.WriteRecord, error) {
		rec := &zppb.WriteRecord{}
		for _, k := range keys {
			// A key set again since the scan is live: leave it.
			if expired, err := r.db.Expired(k, r.NowMs()); err != nil {
				return nil, err
			} else if expired {
				rec.Mutations = append(rec.Mutations, &zppb.Mutation{Kind: zppb.Mutation_DELETE, Key: k})
			}
		}
		n = len(rec.Mutations)
		return rec, nil
	})
	return n, next, err
}

// Position returns the (term, lsn) of the last record and the applied lsn.
func (r *Replica) Position() (term, lsn, applied uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	term, lsn = r.position()
	_, applied = r.db.Applied()
	return term, lsn, applied
}

// FirstLSN returns the oldest lsn the binlog still holds.
func (r *Replica) FirstLSN() uint64 { return r.log.First() }

// Sizes returns the bytes the DB and the binlog use on disk.
func (r *Replica) Sizes() (db, binlog int64) {
	db, err := r.db.DiskUsage()
	if err != nil {
		r.opts.Logger.Debug("disk usage", "err", err)
	}
	return db, r.log.Size()
}

// Close closes the binlog and the DB. Writes in progress finish first.
func (r *Replica) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return errors.Join(r.log.Close(), r.db.Close())
}
