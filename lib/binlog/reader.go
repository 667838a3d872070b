package binlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// readAhead is how much a Reader reads from a segment at a time.
const readAhead = 256 << 10

// Reader reads records in LSN order, and keeps up with the log: when Next
// returns io.EOF, records appended later are returned by later calls. A
// Reader is not safe for concurrent use; a Log can have any number.
type Reader struct {
	l     *Log
	epoch uint64 // the log's epoch when the reader was created
	from  uint64 // records below from are skipped
	next  uint64 // LSN of the record at off

	seg    *segment
	f      *os.File
	off    int64 // offset of the next record in f
	limit  int64 // bytes of f known to hold whole records
	sealed bool  // seg will not grow: at limit, move to the next segment

	buf    []byte // bytes of f from bufOff on
	bufOff int64
	err    error // sticky
}

// NewReader returns a Reader whose first record is the one at lsn from.
// from may be Last()+1, to read only what comes next. It fails with
// ErrPurged if from is below First (the caller needs a full sync) and with
// ErrNotFound if from is beyond Last()+1.
func (l *Log) NewReader(from uint64) (*Reader, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkOpenLocked(); err != nil {
		return nil, err
	}
	if _, base := l.baseLocked(); from <= base {
		return nil, fmt.Errorf("%w: reading from lsn %d, first is %d", ErrPurged, from, base+1)
	}
	if from > l.last+1 {
		return nil, fmt.Errorf("%w: reading from lsn %d, last is %d", ErrNotFound, from, l.last)
	}
	return &Reader{l: l, epoch: l.epoch.Load(), from: from, next: from}, nil
}

// Next returns the next record. At the current end of the log it returns
// io.EOF, and the Reader stays usable: call Next again later, or Wait. Any
// other error is final. The record's payload is the caller's.
//
// A record that is corrupt on disk yields an error wrapping ErrCorrupt. If
// the log was truncated or reset since the Reader was created, Next
// returns ErrTruncated: it does not try to tell whether its own position
// survived, because a stream that crosses a truncation has to be
// renegotiated anyway.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	for {
		if r.f == nil || r.off >= r.limit {
			if err := r.refresh(); err != nil {
				return Record{}, r.fail(err)
			}
			if r.off >= r.limit {
				return Record{}, io.EOF
			}
		}
		rec, n, err := r.read()
		// The read happened outside the log's lock. Every byte below limit
		// is immutable unless the log is truncated, and a truncation bumps
		// the epoch before it touches a file, so an unchanged epoch here
		// means rec is a record the log held.
		if r.l.epoch.Load() != r.epoch {
			return Record{}, r.fail(ErrTruncated)
		}
		if err != nil {
			return Record{}, r.fail(err)
		}
		r.off += n
		r.next++
		if rec.LSN >= r.from {
			return rec, nil
		}
	}
}

// Wait blocks until a record after the ones already returned is available,
// so that Next will not return io.EOF. It returns ErrClosed or
// ErrTruncated when no such record can come, the log's write failure once
// the records written before it are all read, and ctx.Err() if ctx ends
// first.
func (r *Reader) Wait(ctx context.Context) error {
	if r.err != nil {
		return r.err
	}
	l := r.l
	want := max(r.next, r.from)
	l.mu.Lock()
	for {
		var err error
		switch {
		case l.closed:
			err = ErrClosed
		case l.epoch.Load() != r.epoch:
			err = ErrTruncated
		case want <= l.last:
			// Readable even if the log has failed since.
		case l.failed != nil:
			err = l.failed // nothing more will be appended
		default:
			ch := l.appended.wait()
			l.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ch:
			}
			l.mu.Lock()
			continue
		}
		l.mu.Unlock()
		return err
	}
}

// Close releases the Reader's file. It does not affect the log.
func (r *Reader) Close() error {
	if r.err == nil {
		r.err = ErrClosed
	}
	r.buf = nil
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

func (r *Reader) fail(err error) error {
	if !errors.Is(err, io.EOF) {
		r.err = err
	}
	return err
}

// refresh learns, under the log's lock, how far the Reader may read, and
// moves it to the next segment when it has finished a sealed one.
func (r *Reader) refresh() error {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.epoch.Load() != r.epoch {
		return ErrTruncated
	}
	for {
		if r.seg == nil {
			i := l.segmentIndexLocked(r.next)
			if i < 0 {
				return fmt.Errorf("%w: reader at lsn %d, first is %d", ErrPurged, r.next, l.segs[0].first)
			}
			if err := r.openLocked(l.segs[i]); err != nil {
				return err
			}
		}
		// A segment is sealed once it is not the last one (or was purged);
		// its size no longer changes then.
		r.sealed = r.seg.removed || r.seg != l.activeSegment()
		r.limit = r.seg.size
		if r.off < r.limit || !r.sealed {
			return nil
		}
		if r.off > r.limit {
			return fmt.Errorf("%w: reader offset %d beyond end %d of %s", ErrCorrupt, r.off, r.limit, r.seg.path)
		}
		// Finished a sealed segment: the next one starts at r.next.
		i := l.segmentIndexLocked(r.next)
		if i < 0 || l.segs[i].first != r.next {
			if r.next < l.segs[0].first {
				return fmt.Errorf("%w: reader at lsn %d, first is %d", ErrPurged, r.next, l.segs[0].first)
			}
			return fmt.Errorf("%w: no segment starts at lsn %d after %s", ErrCorrupt, r.next, r.seg.path)
		}
		if err := r.openLocked(l.segs[i]); err != nil {
			return err
		}
	}
}

// openLocked positions the Reader at the start of seg.
func (r *Reader) openLocked(seg *segment) error {
	f, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("binlog: reader: %w", err)
	}
	if r.f != nil {
		r.f.Close()
	}
	r.f, r.seg = f, seg
	r.off, r.limit = segmentHeaderSize, segmentHeaderSize
	r.buf, r.bufOff = r.buf[:0], 0
	// Records before from are read and skipped: a segment has no index,
	// and starting mid-segment only happens when a stream begins.
	r.next = seg.first
	return nil
}

// read decodes the record at r.off, which lies below r.limit.
func (r *Reader) read() (Record, int64, error) {
	hdr, err := r.bytesAt(r.off, recordHeaderSize)
	if err != nil {
		return Record{}, 0, err
	}
	h := decodeRecordHeader(hdr)
	n := recordHeaderSize + int64(h.size)
	if r.off+n > r.limit {
		return Record{}, 0, fmt.Errorf("%w: %s offset %d: record of %d bytes crosses end %d",
			ErrCorrupt, r.seg.path, r.off, n, r.limit)
	}
	b, err := r.bytesAt(r.off, int(n))
	if err != nil {
		return Record{}, 0, err
	}
	if err := h.verify(b, b[recordHeaderSize:]); err != nil {
		return Record{}, 0, fmt.Errorf("%w: %s offset %d: %v", ErrCorrupt, r.seg.path, r.off, err)
	}
	if h.lsn != r.next {
		return Record{}, 0, fmt.Errorf("%w: %s offset %d: lsn %d where %d was expected",
			ErrCorrupt, r.seg.path, r.off, h.lsn, r.next)
	}
	rec := Record{Term: h.term, LSN: h.lsn}
	if h.size > 0 && h.lsn >= r.from {
		rec.Payload = make([]byte, h.size)
		copy(rec.Payload, b[recordHeaderSize:])
	}
	return rec, n, nil
}

// bytesAt returns n bytes of the current segment at off, reading ahead
// (up to the limit) to serve the records that follow.
func (r *Reader) bytesAt(off int64, n int) ([]byte, error) {
	if off < r.bufOff || off+int64(n) > r.bufOff+int64(len(r.buf)) {
		want := max(int64(n), readAhead)
		want = min(want, r.limit-off)
		if want < int64(n) {
			return nil, fmt.Errorf("%w: %s offset %d: need %d bytes, %d available",
				ErrCorrupt, r.seg.path, off, n, want)
		}
		if int64(cap(r.buf)) < want {
			r.buf = make([]byte, want)
		}
		r.buf = r.buf[:want]
		r.bufOff = off
		if _, err := r.f.ReadAt(r.buf, off); err != nil {
			r.buf = r.buf[:0]
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: %s shorter than expected", ErrCorrupt, r.seg.path)
			}
			return nil, fmt.Errorf("binlog: reader: %w", err)
		}
	}
	start := off - r.bufOff
	return r.buf[start : start+int64(n)], nil
}
