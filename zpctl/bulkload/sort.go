package bulkload

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/zeppelin-kv/zeppelin/lib/engine"
)

// entry is a record in the sort: its key as the DB orders it
// (engine.SortKey, which ends with the user key), and its place in the
// input, which decides between duplicates (the last one wins).
type entry struct {
	sortKey []byte
	keyLen  int
	value   []byte
	exp     int64
	seq     uint64
}

func (e *entry) userKey() []byte { return e.sortKey[len(e.sortKey)-e.keyLen:] }

// entryOverhead is what an entry costs beyond its bytes, for the memory
// bound.
const entryOverhead = 96

func compareEntries(a, b entry) int {
	if c := bytes.Compare(a.sortKey, b.sortKey); c != 0 {
		return c
	}
	return cmp.Compare(b.seq, a.seq) // the later first
}

// sorter collects each partition's records, in memory up to a bound and
// in sorted runs on disk beyond it.
type sorter struct {
	dir   string
	limit int64
	used  int64
	parts []*partSort
	seq   uint64
	runs  int
	// Spilled counts the bytes written to runs.
	spilled int64
}

type partSort struct {
	mem  []entry
	runs []string
}

func newSorter(dir string, partitions int, limit int64) *sorter {
	s := &sorter{dir: dir, limit: limit, parts: make([]*partSort, partitions)}
	for i := range s.parts {
		s.parts[i] = &partSort{}
	}
	return s
}

// add adds a record to partition p.
func (s *sorter) add(p uint32, rec Record) error {
	s.seq++
	e := entry{sortKey: engine.SortKey(rec.Key), keyLen: len(rec.Key), value: rec.Value, exp: rec.ExpireAtMs, seq: s.seq}
	s.parts[p].mem = append(s.parts[p].mem, e)
	s.used += int64(len(e.sortKey)+len(e.value)) + entryOverhead
	if s.used > s.limit {
		return s.spill()
	}
	return nil
}

// spill writes every partition's records to a sorted run each.
func (s *sorter) spill() error {
	for _, ps := range s.parts {
		if len(ps.mem) == 0 {
			continue
		}
		slices.SortFunc(ps.mem, compareEntries)
		s.runs++
		path := filepath.Join(s.dir, fmt.Sprintf("run-%06d", s.runs))
		n, err := writeRun(path, ps.mem)
		if err != nil {
			return err
		}
		s.spilled += n
		ps.runs = append(ps.runs, path)
		clear(ps.mem)
		ps.mem = ps.mem[:0]
	}
	s.used = 0
	return nil
}

func writeRun(path string, es []entry) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var hdr [4 * binary.MaxVarintLen64]byte
	var n int64
	for i := range es {
		e := &es[i]
		b := binary.AppendUvarint(hdr[:0], uint64(len(e.sortKey)))
		b = binary.AppendUvarint(b, uint64(e.keyLen))
		b = binary.AppendUvarint(b, uint64(len(e.value)))
		b = binary.AppendVarint(b, e.exp)
		b = binary.AppendUvarint(b, e.seq)
		w.Write(b)
		w.Write(e.sortKey)
		w.Write(e.value)
		n += int64(len(b) + len(e.sortKey) + len(e.value))
	}
	if err := w.Flush(); err != nil {
		return n, err
	}
	return n, f.Close()
}

// iterator yields a sorted sequence of entries.
type iterator interface {
	next() (entry, bool, error)
	close()
}

type memIter struct {
	es []entry
	i  int
}

func (m *memIter) next() (entry, bool, error) {
	if m.i >= len(m.es) {
		return entry{}, false, nil
	}
	m.i++
	return m.es[m.i-1], true, nil
}

func (m *memIter) close() {}

type runIter struct {
	f *os.File
	r *bufio.Reader
}

func openRun(path string) (*runIter, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &runIter{f: f, r: bufio.NewReaderSize(f, 256<<10)}, nil
}

func (it *runIter) next() (entry, bool, error) {
	kl, err := binary.ReadUvarint(it.r)
	if errors.Is(err, io.EOF) {
		return entry{}, false, nil
	}
	var e entry
	var ul, vl uint64
	if err == nil {
		ul, err = binary.ReadUvarint(it.r)
	}
	if err == nil {
		vl, err = binary.ReadUvarint(it.r)
	}
	if err == nil {
		e.exp, err = binary.ReadVarint(it.r)
	}
	if err == nil {
		e.seq, err = binary.ReadUvarint(it.r)
	}
	if err == nil {
		buf := make([]byte, kl+vl)
		_, err = io.ReadFull(it.r, buf)
		e.sortKey, e.value, e.keyLen = buf[:kl:kl], buf[kl:], int(ul)
	}
	if err != nil {
		return entry{}, false, fmt.Errorf("reading a sorted run: %w", err)
	}
	return e, true, nil
}

func (it *runIter) close() { it.f.Close() }

// mergeHeap merges iterators by compareEntries.
type mergeHeap struct {
	its  []iterator
	head []entry
}

func (h *mergeHeap) Len() int           { return len(h.its) }
func (h *mergeHeap) Less(i, j int) bool { return compareEntries(h.head[i], h.head[j]) < 0 }
func (h *mergeHeap) Swap(i, j int) {
	h.its[i], h.its[j] = h.its[j], h.its[i]
	h.head[i], h.head[j] = h.head[j], h.head[i]
}
func (h *mergeHeap) Push(any) { panic("unused") }
func (h *mergeHeap) Pop() any {
	n := len(h.its) - 1
	h.its[n].close()
	h.its, h.head = h.its[:n], h.head[:n]
	return nil
}

// merge gives partition p's records to fn in SortKey order, each key once
// with its last value in the input; it returns how many duplicates it
// dropped.
func (s *sorter) merge(p uint32, fn func(e *entry) error) (dups int64, err error) {
	ps := s.parts[p]
	slices.SortFunc(ps.mem, compareEntries)
	h := &mergeHeap{}
	defer func() {
		for _, it := range h.its {
			it.close()
		}
	}()
	add := func(it iterator) error {
		e, ok, err := it.next()
		if err != nil || !ok {
			it.close()
			return err
		}
		h.its, h.head = append(h.its, it), append(h.head, e)
		return nil
	}
	if err := add(&memIter{es: ps.mem}); err != nil {
		return 0, err
	}
	for _, path := range ps.runs {
		it, err := openRun(path)
		if err != nil {
			return 0, err
		}
		if err := add(it); err != nil {
			return 0, err
		}
	}
	heap.Init(h)
	var last []byte
	for h.Len() > 0 {
		e := h.head[0]
		if last != nil && bytes.Equal(e.sortKey, last) {
			dups++
		} else {
			if err := fn(&e); err != nil {
				return dups, err
			}
			last = e.sortKey
		}
		next, ok, err := h.its[0].next()
		if err != nil {
			return dups, err
		}
		if ok {
			h.head[0] = next
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return dups, nil
}

// release drops partition p's records once merged.
func (s *sorter) release(p uint32) {
	ps := s.parts[p]
	for _, r := range ps.runs {
		os.Remove(r)
	}
	ps.mem, ps.runs = nil, nil
}
