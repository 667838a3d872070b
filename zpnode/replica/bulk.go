package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
	"github.com/zeppelin-kv/zeppelin/lib/engine"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

// Bulk load (zpctl bulkload): a table file is staged in every replica's
// Dir/bulk as <id>.sst (uploaded in chunks to <id>.part, checked against
// its size and CRC-32C, then renamed), and the master logs a record naming
// it (WriteRecord.ingest) and applies it under the same lock as every
// write. Each replica ingests the file when it applies that record, in the
// binlog's order, so replay and slaves see what the master saw; a slave
// without the file fetches it from its master first, or full-syncs when
// the master has dropped it. Once applied the file is renamed
// <id>.applied.<lsn> and kept as long as the binlog holds its record (a
// purge drops it with the record, which the DB then has in table files):
// a replay after a crash and a lagging slave find it.

var (
	// ErrStaging is a bad staging request: an id that is not a name, a
	// chunk at the wrong offset, a file whose size or checksum is wrong.
	ErrStaging = errors.New("replica: bulk load staging")
	// ErrNotStaged is an ingest or fetch of a file this replica does not
	// hold.
	ErrNotStaged = errors.New("replica: table file not staged")
)

// maxStageID bounds a staged file's id.
const maxStageID = 64

// checkStageID accepts ids of letters, digits, '-' and '_' only: the id
// is a file name.
func checkStageID(id string) error {
	if id == "" || len(id) > maxStageID {
		return fmt.Errorf("%w: id of %d bytes", ErrStaging, len(id))
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: id %q is not a name", ErrStaging, id)
		}
	}
	return nil
}

func (r *Replica) bulkDir() string { return filepath.Join(r.opts.Dir, "bulk") }

// Stage writes a chunk of the table file id at offset (see
// zppb.BulkStageRequest) and returns the bytes the replica holds. A
// chunk at offset 0 starts the file over; one elsewhere must continue it.
// With last, the file must have size bytes and the CRC-32C crc, and is
// staged once Stage returns.
func (r *Replica) Stage(ctx context.Context, id string, offset uint64, data []byte, last bool, size uint64, crc uint32) (uint64, error) {
	if err := checkStageID(id); err != nil {
		return 0, err
	}
	dir := r.bulkDir()
	final := filepath.Join(dir, id+".sst")
	if fi, err := os.Stat(final); err == nil {
		// Staged already (a retried last chunk).
		return uint64(fi.Size()), nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("replica: %w", err)
	}
	part := filepath.Join(dir, id+".part")
	flags := os.O_WRONLY | os.O_CREATE
	if offset == 0 {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return 0, fmt.Errorf("replica: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("replica: %w", err)
	}
	if have := uint64(fi.Size()); have != offset {
		return have, fmt.Errorf("%w: chunk at offset %d, the replica holds %d bytes of %s", ErrStaging, offset, have, id)
	}
	if _, err := f.WriteAt(data, int64(offset)); err != nil {
		return offset, fmt.Errorf("replica: staging %s: %w", id, err)
	}
	startWriteback(f, int64(offset), len(data))
	have := offset + uint64(len(data))
	if !last {
		return have, nil
	}
	if have != size {
		return have, fmt.Errorf("%w: %s has %d bytes, the last chunk says %d", ErrStaging, id, have, size)
	}
	if err := f.Sync(); err != nil {
		return have, fmt.Errorf("replica: staging %s: %w", id, err)
	}
	if got, _, err := dbsync.FileCRC(ctx, part); err != nil {
		return have, fmt.Errorf("replica: staging %s: %w", id, err)
	} else if got != crc {
		os.Remove(part)
		return 0, fmt.Errorf("%w: %s has CRC-32C %08x, the last chunk says %08x", ErrStaging, id, got, crc)
	}
	if err := os.Rename(part, final); err != nil {
		return have, fmt.Errorf("replica: staging %s: %w", id, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return have, fmt.Errorf("replica: staging %s: %w", id, err)
	}
	return have, nil
}

// Unstage drops a staged or partly staged file that no record names yet
// (a bulk load that gave up). A file a record applied stays.
func (r *Replica) Unstage(id string) error {
	if err := checkStageID(id); err != nil {
		return err
	}
	for _, ext := range []string{".part", ".sst"} {
		if err := os.Remove(filepath.Join(r.bulkDir(), id+ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replica: %w", err)
		}
	}
	return nil
}

// stagedPath returns the path of the staged file id, applied or not, or
// "" when the replica does not hold it.
func (r *Replica) stagedPath(id string) string {
	if checkStageID(id) != nil {
		return ""
	}
	p := filepath.Join(r.bulkDir(), id+".sst")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if m, _ := filepath.Glob(filepath.Join(r.bulkDir(), id+".applied.*")); len(m) > 0 {
		return m[0]
	}
	return ""
}

// ReadStaged reads up to n bytes of the staged file id at offset, for a
// slave that lacks it; eof is set with the file's last bytes.
func (r *Replica) ReadStaged(id string, offset uint64, n int) (data []byte, eof bool, err error) {
	p := r.stagedPath(id)
	if p == "" {
		return nil, false, fmt.Errorf("%w: %s", ErrNotStaged, id)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrNotStaged, id, err)
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := f.ReadAt(buf, int64(offset))
	if errors.Is(err, io.EOF) {
		return buf[:k], true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("replica: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("replica: %w", err)
	}
	return buf[:k], offset+uint64(k) >= uint64(fi.Size()), nil
}

// Ingest logs a record that ingests the staged file f and waits until it
// is applied, as a write (min_sync_replicas included). It returns the
// record's position. The file was routed for the slots [begin, end): when
// the replica's range is another by the time the record is logged (a
// split committed since), it is refused (ErrSplitting) rather than
// ingesting keys the partition gave away. end 0: not checked.
func (r *Replica) Ingest(ctx context.Context, f *zppb.IngestFile, begin, end uint32) (term, lsn uint64, err error) {
	p := r.stagedPath(f.GetId())
	if p == "" {
		return 0, 0, fmt.Errorf("%w: %s", ErrNotStaged, f.GetId())
	}
	if i := strings.LastIndex(p, ".applied."); i >= 0 {
		// Ingested already (a retry whose first answer was lost): its
		// record's position, and no second record.
		lsn, err := strconv.ParseUint(p[i+len(".applied."):], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: %s: %w", ErrStaging, p, err)
		}
		term, _ := r.log.TermAt(lsn) // 0 once purged: the lsn says enough
		return term, lsn, nil
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s: %w", ErrNotStaged, f.GetId(), err)
	}
	if uint64(fi.Size()) != f.GetSize() {
		return 0, 0, fmt.Errorf("%w: %s has %d bytes, not %d", ErrStaging, f.GetId(), fi.Size(), f.GetSize())
	}
	rec := &zppb.WriteRecord{Ingest: f}
	// The file's id is the request's: a retry after a lost answer is
	// answered by the first record instead of ingesting the file again
	// over client writes logged since.
	t, err := r.submit([]byte("bulkload/"+f.GetId()), func(View) (*zppb.WriteRecord, error) {
		if end != 0 && r.slots != (slotRange{begin, end}) {
			return nil, fmt.Errorf("%w: the file was routed for slots [%d, %d), the partition has [%d, %d)",
				ErrSplitting, begin, end, r.slots.begin, r.slots.end)
		}
		return rec, nil
	})
	if err != nil {
		return 0, 0, err
	}
	if _, err := t.Wait(ctx); err != nil {
		return t.w.term, t.w.lsn, err
	}
	return t.w.term, t.w.lsn, nil
}

// engineRecord is the record the DB applies for a binlog record: with the
// path of its table file when it ingests one.
func (r *Replica) engineRecord(lsn, term uint64, rec *zppb.WriteRecord) engine.Record {
	er := engine.Record{LSN: lsn, Term: term, Rec: rec}
	if f := rec.GetIngest(); f != nil {
		er.IngestPath = r.stagedPath(f.GetId())
	}
	return er
}

// applyToDB applies records to db (held by the caller) and, for those
// that ingested a file, marks the file applied.
func (r *Replica) applyToDB(db *engine.DB, recs []engine.Record) error {
	if err := db.ApplyBatch(recs); err != nil {
		return err
	}
	for _, er := range recs {
		if er.Rec.GetIngest() == nil || !strings.HasSuffix(er.IngestPath, ".sst") {
			continue
		}
		applied := strings.TrimSuffix(er.IngestPath, ".sst") + ".applied." + strconv.FormatUint(er.LSN, 10)
		if err := os.Rename(er.IngestPath, applied); err != nil {
			r.opts.Logger.Warn("bulk load: cannot mark a table file applied", "file", er.IngestPath, "err", err)
		}
	}
	return nil
}

// dropAppliedFiles removes the applied table files whose records the
// binlog no longer holds: nothing replays or streams them again (a purge
// keeps every record the DB's table files lack).
func (r *Replica) dropAppliedFiles() {
	first := r.log.First()
	files, _ := filepath.Glob(filepath.Join(r.bulkDir(), "*.applied.*"))
	for _, p := range files {
		lsn, err := strconv.ParseUint(p[strings.LastIndexByte(p, '.')+1:], 10, 64)
		if err == nil && lsn < first {
			os.Remove(p)
		}
	}
}

// staleStagedAge is how long a staged file no record names is kept: a
// bulk load ingests each partition's file right after staging it, so one
// this old belongs to a load that died between the two.
const staleStagedAge = time.Hour

// dropStaleStaged removes the staged files (<id>.sst) older than
// staleStagedAge. Only at Open, once every record of the binlog is
// applied: no record the replica holds names one, and a record that
// arrives later and names a file the replica lacks fetches it from the
// master (or full-syncs), as for a slave that was down during the staging.
func (r *Replica) dropStaleStaged() {
	files, _ := filepath.Glob(filepath.Join(r.bulkDir(), "*.sst"))
	for _, p := range files {
		fi, err := os.Stat(p)
		if err != nil || r.opts.Now().Sub(fi.ModTime()) < staleStagedAge {
			continue
		}
		if err := os.Remove(p); err == nil {
			r.opts.Logger.Info("bulk load: removed a staged table file no load ingested", "file", filepath.Base(p), "staged", fi.ModTime())
		}
	}
}

// fetchStaged makes sure the replica holds the table files recs ingest,
// fetching missing ones from the master over conn. ErrNotStaged: the
// master no longer has one.
func (r *Replica) fetchStaged(ctx context.Context, conn Conn, recs []*zppb.WriteRecord) error {
	for _, rec := range recs {
		f := rec.GetIngest()
		if f == nil || r.stagedPath(f.GetId()) != "" {
			continue
		}
		if err := checkStageID(f.GetId()); err != nil {
			return err
		}
		r.opts.Logger.Info("bulk load: fetching a table file from the master", "id", f.GetId(), "bytes", f.GetSize())
		var off uint64
		for {
			resp, err := call(ctx, conn, &zppb.Request{Cmd: &zppb.Request_BulkFetch{BulkFetch: &zppb.BulkFetchRequest{
				Table: r.opts.Table, Partition: r.opts.ID, Id: f.GetId(), Offset: off, MaxBytes: fetchChunk,
			}}})
			if status.Code(err) == zppb.Code_NOT_FOUND {
				return fmt.Errorf("%w: %s, on the master too", ErrNotStaged, f.GetId())
			}
			if err != nil {
				return fmt.Errorf("bulk load: fetching %s: %w", f.GetId(), err)
			}
			fr := resp.GetBulkFetch()
			last := fr.GetEof()
			if _, err := r.Stage(ctx, f.GetId(), off, fr.GetData(), last, f.GetSize(), f.GetCrc32C()); err != nil {
				return err
			}
			off += uint64(len(fr.GetData()))
			if last {
				break
			}
			if len(fr.GetData()) == 0 {
				return fmt.Errorf("bulk load: fetching %s: empty chunk at %d", f.GetId(), off)
			}
		}
	}
	return nil
}

// fetchChunk is the size of the chunks a slave fetches a table file in.
const fetchChunk = 4 << 20

// cleanStaging drops partial uploads, which a restart ends.
func cleanStaging(dir string) {
	parts, _ := filepath.Glob(filepath.Join(dir, "bulk", "*.part"))
	for _, p := range parts {
		os.Remove(p)
	}
}
