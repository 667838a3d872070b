package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// exportIdle is how long an export session may sit without a page before
// its snapshot is dropped.
const exportIdle = 10 * time.Minute

// maxExports bounds the export sessions open at once: each holds a
// checkpoint (pinning table files compaction would delete) and an open DB.
const maxExports = 4

// exports are the export sessions of a node (zpctl export): a checkpoint
// of a replica, opened as a DB of its own, read page by page.
type exports struct {
	dir    string
	shared *engine.Shared
	logger *slog.Logger

	mu       sync.Mutex
	sessions map[string]*exportSession
	closed   bool
}

type exportSession struct {
	table     string
	partition uint32
	dir       string
	db        *engine.DB
	lastUsed  time.Time
	busy      int // pages being read
}

func newExports(dir string, shared *engine.Shared, logger *slog.Logger) *exports {
	// Checkpoints of a previous process are of sessions that died with it.
	os.RemoveAll(dir)
	return &exports{dir: dir, shared: shared, logger: logger, sessions: make(map[string]*exportSession)}
}

// start checkpoints db into a session directory and opens the checkpoint.
func (e *exports) start(table string, partition uint32, checkpoint func(dir string) (term, lsn uint64, err error)) (*zppb.ExportStartResponse, error) {
	e.expire(time.Now())
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, status.New(zppb.Code_UNAVAILABLE, "node closing")
	}
	if len(e.sessions) >= maxExports {
		e.mu.Unlock()
		return nil, status.New(zppb.Code_WAIT, "%d exports in progress on this node", maxExports)
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	// Reserved now, so that concurrent starts count against the bound.
	s := &exportSession{table: table, partition: partition, dir: filepath.Join(e.dir, id), lastUsed: time.Now(), busy: 1}
	e.sessions[id] = s
	e.mu.Unlock()

	term, lsn, err := checkpoint(s.dir)
	if err == nil {
		s.db, err = engine.Open(s.dir, engine.Options{Shared: e.shared, Logger: e.logger, DisableWAL: true})
	}
	e.mu.Lock()
	s.busy--
	if err != nil {
		delete(e.sessions, id)
	}
	e.mu.Unlock()
	if err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("export of %s/%d: %w", table, partition, err)
	}
	return &zppb.ExportStartResponse{Session: id, Term: term, Lsn: lsn}, nil
}

// next reads a page of a session.
func (e *exports) next(req *zppb.ExportNextRequest) (*zppb.ExportNextResponse, error) {
	e.mu.Lock()
	s, ok := e.sessions[req.Session]
	if !ok || s.db == nil || s.table != req.Table || s.partition != req.Partition {
		e.mu.Unlock()
		return nil, status.New(zppb.Code_NOT_FOUND, "no export session %q of %s/%d (ended, expired, or the node restarted)", req.Session, req.Table, req.Partition)
	}
	s.busy++
	s.lastUsed = time.Now()
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		s.busy--
		s.lastUsed = time.Now()
		e.mu.Unlock()
	}()
	entries, next, err := s.db.ScanAll(req.Cursor, int(req.Count), time.Now().UnixMilli(), false)
	if err != nil {
		return nil, fmt.Errorf("export of %s/%d: %w", req.Table, req.Partition, err)
	}
	out := &zppb.ExportNextResponse{Next: next, Entries: make([]*zppb.ExportEntry, len(entries))}
	for i, en := range entries {
		out.Entries[i] = &zppb.ExportEntry{Key: en.Key, Value: en.Value, ExpireAtMs: en.ExpireAtMs}
	}
	return out, nil
}

// end drops a session; an unknown one is not an error (ended already).
func (e *exports) end(id string) {
	e.mu.Lock()
	s, ok := e.sessions[id]
	if ok && s.busy == 0 {
		delete(e.sessions, id)
	} else {
		ok = false // in use: expiry takes it later
	}
	e.mu.Unlock()
	if ok {
		s.close()
	}
}

// expire drops sessions idle for exportIdle.
func (e *exports) expire(now time.Time) {
	var idle []*exportSession
	e.mu.Lock()
	for id, s := range e.sessions {
		if s.busy == 0 && now.Sub(s.lastUsed) > exportIdle {
			delete(e.sessions, id)
			idle = append(idle, s)
		}
	}
	e.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
}

// close drops every session that is not being read (a node closes after
// its RPC server, so none is).
func (e *exports) close() {
	e.mu.Lock()
	e.closed = true
	var all []*exportSession
	for id, s := range e.sessions {
		if s.busy == 0 {
			delete(e.sessions, id)
			all = append(all, s)
		}
	}
	e.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}

func (s *exportSession) close() {
	if s.db != nil {
		s.db.Close() // the directory goes whatever Close says
	}
	os.RemoveAll(s.dir)
}

func (s *Server) exportStart(req *zppb.ExportStartRequest) (*zppb.Response, error) {
	r, err := s.backupReplica(req.Table, req.Partition)
	if err != nil {
		return nil, err
	}
	resp, err := s.exports.start(req.Table, req.Partition, func(dir string) (term, lsn uint64, err error) {
		err = r.WithDB(func(db *engine.DB) error {
			term, lsn, err = db.Checkpoint(dir)
			return err
		})
		return term, lsn, err
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("export started", "table", req.Table, "partition", req.Partition, "session", resp.Session, "lsn", resp.Lsn)
	return &zppb.Response{Result: &zppb.Response_ExportStart{ExportStart: resp}}, nil
}

func (s *Server) exportNext(req *zppb.ExportNextRequest) (*zppb.Response, error) {
	resp, err := s.exports.next(req)
	if err != nil {
		return nil, err
	}
	return &zppb.Response{Result: &zppb.Response_ExportNext{ExportNext: resp}}, nil
}

func (s *Server) exportEnd(req *zppb.ExportEndRequest) (*zppb.Response, error) {
	s.exports.end(req.Session)
	return &zppb.Response{}, nil
}
