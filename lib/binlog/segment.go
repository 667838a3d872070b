package binlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/zeppelin-kv/zeppelin/lib/atomicfile"
)

const (
	segmentMagic      = "ZPBL"
	segmentVersion    = 1
	segmentHeaderSize = 32
	segmentExt        = ".log"
	tmpExt            = atomicfile.TempSuffix // a segment being created
	segmentNameDigits = 20                    // enough for any uint64
)

// segment describes one segment file. The Log's mutex guards every field
// that can change (size, terms, removed).
type segment struct {
	first    uint64 // LSN of the first record the segment holds or will hold
	prevTerm uint64 // term of record first-1 (0 if unknown or none)
	path     string
	size     int64 // bytes, header included; grows while the segment is active

	// terms lists where the term changes inside the segment. It is kept up
	// to date for the active segment and filled in lazily (by TermAt) for
	// segments sealed before Open; nil means not known yet.
	terms []termRun

	// removed is set when PurgeBefore deletes the file; a Reader that still
	// has it open may finish reading it.
	removed bool
}

// termRun says that records from lsn first on have the given term, up to
// the next run.
type termRun struct {
	first uint64
	term  uint64
}

// termAt returns the term of lsn, which must lie in the segment and be
// covered by s.terms.
func (s *segment) termAt(lsn uint64) uint64 {
	i, found := slices.BinarySearchFunc(s.terms, lsn, func(r termRun, lsn uint64) int {
		switch {
		case r.first < lsn:
			return -1
		case r.first > lsn:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	if i < 0 {
		return s.prevTerm
	}
	return s.terms[i].term
}

// noteTerm records that lsn, appended to the segment, has term.
func (s *segment) noteTerm(lsn, term uint64) {
	if n := len(s.terms); n == 0 || s.terms[n-1].term != term {
		s.terms = append(s.terms, termRun{first: lsn, term: term})
	}
}

// trimTerms drops term runs of records after lsn.
func (s *segment) trimTerms(lsn uint64) {
	for len(s.terms) > 0 && s.terms[len(s.terms)-1].first > lsn {
		s.terms = s.terms[:len(s.terms)-1]
	}
}

func segmentName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segmentNameDigits, first, segmentExt)
}

// parseSegmentName returns the first LSN encoded in a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != segmentNameDigits {
		return 0, false
	}
	first, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return first, true
}

// listSegments returns the first LSNs of the segments in dir, ascending, and
// removes leftovers of segment creations that did not finish.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("binlog: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, segmentExt+tmpExt) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("binlog: removing leftover %s: %w", name, err)
			}
			continue
		}
		if first, ok := parseSegmentName(name); ok && e.Type().IsRegular() {
			firsts = append(firsts, first)
		}
	}
	slices.Sort(firsts)
	return firsts, nil
}

// segmentHeader is the fixed header at the start of every segment.
type segmentHeader struct {
	first    uint64
	prevTerm uint64
}

func (h segmentHeader) encode() []byte {
	b := make([]byte, segmentHeaderSize)
	copy(b[0:4], segmentMagic)
	binary.LittleEndian.PutUint32(b[4:8], segmentVersion)
	binary.LittleEndian.PutUint64(b[8:16], h.first)
	binary.LittleEndian.PutUint64(b[16:24], h.prevTerm)
	binary.LittleEndian.PutUint32(b[28:32], crc32.Checksum(b[:28], castagnoli))
	return b
}

func decodeSegmentHeader(b []byte) (segmentHeader, error) {
	if len(b) < segmentHeaderSize {
		return segmentHeader{}, fmt.Errorf("%w: short segment header (%d bytes)", ErrCorrupt, len(b))
	}
	if string(b[0:4]) != segmentMagic {
		return segmentHeader{}, fmt.Errorf("%w: bad segment magic %q", ErrCorrupt, b[0:4])
	}
	if crc := crc32.Checksum(b[:28], castagnoli); crc != binary.LittleEndian.Uint32(b[28:32]) {
		return segmentHeader{}, fmt.Errorf("%w: segment header crc mismatch", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(b[4:8]); v != segmentVersion {
		return segmentHeader{}, fmt.Errorf("%w: unsupported segment version %d", ErrCorrupt, v)
	}
	return segmentHeader{
		first:    binary.LittleEndian.Uint64(b[8:16]),
		prevTerm: binary.LittleEndian.Uint64(b[16:24]),
	}, nil
}

// readSegmentHeader reads and checks the header of the segment at path,
// whose name says it starts at first.
func readSegmentHeader(path string, first uint64) (segmentHeader, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return segmentHeader{}, 0, fmt.Errorf("binlog: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return segmentHeader{}, 0, fmt.Errorf("binlog: %w", err)
	}
	var b [segmentHeaderSize]byte
	if _, err := io.ReadFull(f, b[:]); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return segmentHeader{}, 0, fmt.Errorf("binlog: reading %s: %w", path, err)
	}
	h, err := decodeSegmentHeader(b[:min(int(st.Size()), segmentHeaderSize)])
	if err != nil {
		return h, 0, fmt.Errorf("%s: %w", path, err)
	}
	if h.first != first {
		return h, 0, fmt.Errorf("%w: %s: header says first lsn %d", ErrCorrupt, path, h.first)
	}
	return h, st.Size(), nil
}

// createSegment creates a segment file holding only a header and returns it
// open for appending. The header is made durable under a temporary name and
// then renamed into place, so a segment file that exists under its real
// name always has a valid header.
func createSegment(dir string, h segmentHeader) (*os.File, *segment, error) {
	path := filepath.Join(dir, segmentName(h.first))
	f, err := atomicfile.OpenAppend(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(h.encode())
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("binlog: creating segment %s: %w", path, err)
	}
	return f, &segment{first: h.first, prevTerm: h.prevTerm, path: path, size: segmentHeaderSize}, nil
}

// createFresh creates a new log's first segment without a sync: its
// header and directory entry reach the disk with the first sync of a
// record (Log.syncActiveLocked), and a crash before that leaves no file,
// an empty one or a torn header, which Open discards (tornFirstSegment).
func createFresh(dir string) (*os.File, *segment, error) {
	h := segmentHeader{first: 1}
	path := filepath.Join(dir, segmentName(h.first))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("binlog: creating segment %s: %w", path, err)
	}
	if _, err := f.Write(h.encode()); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("binlog: creating segment %s: %w", path, err)
	}
	return f, &segment{first: h.first, prevTerm: h.prevTerm, path: path, size: segmentHeaderSize}, nil
}

// tornFirstSegment reports whether dir's first segment is what a crash
// during createFresh leaves: no more than a header's bytes, and not a
// valid header. A segment holding a record was synced whole before the
// record counted, so this never drops one.
func tornFirstSegment(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil || len(b) > segmentHeaderSize {
		return false
	}
	_, err = decodeSegmentHeader(b)
	return err != nil
}

// syncDir is atomicfile.SyncDir; tests count its calls.
var syncDir = atomicfile.SyncDir

// scanResult is what scanSegment learned about a segment file.
type scanResult struct {
	header   segmentHeader
	fileSize int64
	// end is the offset just past the last valid record read.
	end int64
	// last and lastTerm describe the last valid record read, or are
	// header.first-1 and header.prevTerm when there is none.
	last, lastTerm uint64
	terms          []termRun
	// bad says why the scan stopped before the end of the file: a torn or
	// corrupt record at offset end. Nil when the scan reached the end of the
	// file or stopAfter.
	bad error
}

// scanSegment reads the segment at path from the start, checking every
// record, until the end of the file, a bad record, or the record with LSN
// stopAfter (math.MaxUint64 for no limit).
func scanSegment(path string, first, stopAfter uint64) (scanResult, error) {
	var res scanResult
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("binlog: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("binlog: %w", err)
	}
	res.fileSize = st.Size()
	r := bufio.NewReaderSize(f, 1<<20)

	var hb [segmentHeaderSize]byte
	n, err := io.ReadFull(r, hb[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("binlog: reading %s: %w", path, err)
	}
	res.header, err = decodeSegmentHeader(hb[:n])
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	if res.header.first != first {
		return res, fmt.Errorf("%w: %s: header says first lsn %d", ErrCorrupt, path, res.header.first)
	}
	res.end = segmentHeaderSize
	res.last, res.lastTerm = first-1, res.header.prevTerm
	if stopAfter < first {
		return res, nil
	}

	var (
		hdr     [recordHeaderSize]byte
		payload []byte
	)
	for res.end < res.fileSize {
		remaining := res.fileSize - res.end
		if remaining < recordHeaderSize {
			res.bad = fmt.Errorf("torn record header (%d of %d bytes)", remaining, recordHeaderSize)
			return res, nil
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return res, fmt.Errorf("binlog: reading %s: %w", path, err)
		}
		h := decodeRecordHeader(hdr[:])
		switch {
		case int64(h.size) > remaining-recordHeaderSize:
			res.bad = fmt.Errorf("torn record: length %d, %d bytes left", h.size, remaining-recordHeaderSize)
			return res, nil
		case h.size > MaxPayloadSize:
			res.bad = fmt.Errorf("record length %d above maximum", h.size)
			return res, nil
		}
		if cap(payload) < int(h.size) {
			payload = make([]byte, h.size)
		}
		payload = payload[:h.size]
		if _, err := io.ReadFull(r, payload); err != nil {
			return res, fmt.Errorf("binlog: reading %s: %w", path, err)
		}
		if err := h.verify(hdr[:], payload); err != nil {
			res.bad = err
			return res, nil
		}
		if h.lsn != res.last+1 {
			res.bad = fmt.Errorf("lsn %d follows lsn %d", h.lsn, res.last)
			return res, nil
		}
		if h.term < res.lastTerm {
			res.bad = fmt.Errorf("term %d of lsn %d below previous term %d", h.term, h.lsn, res.lastTerm)
			return res, nil
		}
		res.end += recordHeaderSize + int64(h.size)
		res.last, res.lastTerm = h.lsn, h.term
		if n := len(res.terms); n == 0 || res.terms[n-1].term != h.term {
			res.terms = append(res.terms, termRun{first: h.lsn, term: h.term})
		}
		if h.lsn == stopAfter {
			return res, nil
		}
	}
	return res, nil
}

// noLimit is the stopAfter of a scan to the end of the segment.
const noLimit = math.MaxUint64
