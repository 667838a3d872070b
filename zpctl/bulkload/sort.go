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
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

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

// Records' bytes are copied into slabs, not allocated one by one (a load
// of a million records made the collector's work a second of its read
// phase); entries are gathered in chunks, each sorted in the background
// as soon as it is full, so sorting runs beside parsing and the merge at
// the end only interleaves sorted chunks.
const (
	slabSize        = 1 << 20
	defaultChunkLen = 1 << 15
)

func compareEntries(a, b entry) int {
	if c := bytes.Compare(a.sortKey, b.sortKey); c != 0 {
		return c
	}
	return cmp.Compare(b.seq, a.seq) // the later first
}

// sorter collects each partition's records, in memory up to a bound and
// in sorted runs on disk beyond it. Records come in through shards, one
// per reading goroutine.
type sorter struct {
	dir      string
	limit    int64
	chunkLen int
	shards   []*shard
	// used is the memory the shards hold, together.
	used atomic.Int64
	// sorting tracks the background sorts of full chunks; sortSlots
	// bounds them.
	sorting   sync.WaitGroup
	sortSlots chan struct{}

	mu   sync.Mutex
	runs int
	// spilled counts the bytes written to runs.
	spilled int64
}

// shard is what one reading goroutine adds records through.
type shard struct {
	s     *sorter
	used  int64
	parts []*partSort
}

type partSort struct {
	// cur is the chunk being filled; chunks are full ones, sorted once
	// sorter.sorting is waited for.
	cur    []entry
	chunks [][]entry
	slab   []byte
	runs   []string
}

func newSorter(dir string, partitions, shards int, limit int64) *sorter {
	s := &sorter{dir: dir, limit: limit, chunkLen: defaultChunkLen,
		sortSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))}
	for range max(1, shards) {
		sh := &shard{s: s, parts: make([]*partSort, partitions)}
		for i := range sh.parts {
			sh.parts[i] = &partSort{}
		}
		s.shards = append(s.shards, sh)
	}
	return s
}

// add adds a record to partition p; seq is its place in the input (a
// later record has a larger one). It copies the record's bytes: rec may
// alias a buffer the caller reuses.
func (sh *shard) add(p uint32, rec Record, seq uint64) error {
	s := sh.s
	ps := sh.parts[p]
	need := engine.SortKeyLen(rec.Key) + len(rec.Value)
	if cap(ps.slab)-len(ps.slab) < need {
		ps.slab = make([]byte, 0, max(slabSize, need))
	}
	n := len(ps.slab)
	ps.slab = engine.AppendSortKey(ps.slab, rec.Key)
	k := len(ps.slab)
	ps.slab = append(ps.slab, rec.Value...)
	e := entry{sortKey: ps.slab[n:k:k], keyLen: len(rec.Key), value: ps.slab[k:len(ps.slab):len(ps.slab)], exp: rec.ExpireAtMs, seq: seq}
	if ps.cur == nil {
		ps.cur = make([]entry, 0, s.chunkLen)
	}
	ps.cur = append(ps.cur, e)
	if len(ps.cur) == s.chunkLen {
		s.sortInBackground(ps.cur)
		ps.chunks, ps.cur = append(ps.chunks, ps.cur), nil
	}
	cost := int64(need) + entryOverhead
	sh.used += cost
	if s.used.Add(cost) > s.limit {
		return sh.spill()
	}
	return nil
}

func (s *sorter) sortInBackground(es []entry) {
	s.sortSlots <- struct{}{}
	s.sorting.Go(func() {
		defer func() { <-s.sortSlots }()
		slices.SortFunc(es, compareEntries)
	})
}

// sortedChunks waits for the background sorts and sorts the partition's
// last chunk: then its chunks are sorted. Once adding is over, partitions
// may be sorted concurrently.
func (s *sorter) sortedChunks(ps *partSort) [][]entry {
	s.sorting.Wait()
	if len(ps.cur) > 0 {
		slices.SortFunc(ps.cur, compareEntries)
		ps.chunks, ps.cur = append(ps.chunks, ps.cur), nil
	}
	return ps.chunks
}

// spill writes each of the shard's partitions to a sorted run.
func (sh *shard) spill() error {
	s := sh.s
	for _, ps := range sh.parts {
		chunks := s.sortedChunks(ps)
		if len(chunks) == 0 {
			continue
		}
		s.mu.Lock()
		s.runs++
		path := filepath.Join(s.dir, fmt.Sprintf("run-%06d", s.runs))
		s.mu.Unlock()
		n, err := writeRun(path, chunks)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.spilled += n
		s.mu.Unlock()
		ps.runs = append(ps.runs, path)
		ps.chunks, ps.slab = nil, nil
	}
	s.used.Add(-sh.used)
	sh.used = 0
	return nil
}

// writeRun writes sorted chunks to one sorted run, duplicates included
// (the merge drops them).
func writeRun(path string, chunks [][]entry) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var hdr [4 * binary.MaxVarintLen64]byte
	var n int64
	err = mergeIters(memIters(chunks), func(e *entry) error {
		b := binary.AppendUvarint(hdr[:0], uint64(len(e.sortKey)))
		b = binary.AppendUvarint(b, uint64(e.keyLen))
		b = binary.AppendUvarint(b, uint64(len(e.value)))
		b = binary.AppendVarint(b, e.exp)
		b = binary.AppendUvarint(b, e.seq)
		w.Write(b)
		w.Write(e.sortKey)
		w.Write(e.value)
		n += int64(len(b) + len(e.sortKey) + len(e.value))
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := w.Flush(); err != nil {
		return n, err
	}
	return n, f.Close()
}

func memIters(chunks [][]entry) []iterator {
	its := make([]iterator, len(chunks))
	for i, c := range chunks {
		its[i] = &memIter{es: c}
	}
	return its
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
// dropped. The entry given to fn is valid until release.
func (s *sorter) merge(p uint32, fn func(e *entry) error) (dups int64, err error) {
	var its []iterator
	for _, sh := range s.shards {
		ps := sh.parts[p]
		its = append(its, memIters(s.sortedChunks(ps))...)
		for _, path := range ps.runs {
			it, err := openRun(path)
			if err != nil {
				for _, it := range its {
					it.close()
				}
				return 0, err
			}
			its = append(its, it)
		}
	}
	var last []byte
	err = mergeIters(its, func(e *entry) error {
		if last != nil && bytes.Equal(e.sortKey, last) {
			dups++
			return nil
		}
		last = e.sortKey
		return fn(e)
	})
	return dups, err
}

// mergeIters gives fn every entry of its in compareEntries order, and
// closes them.
func mergeIters(its []iterator, fn func(e *entry) error) error {
	h := &mergeHeap{}
	defer func() {
		for _, it := range h.its {
			it.close()
		}
	}()
	for i, it := range its {
		e, ok, err := it.next()
		if err != nil || !ok {
			it.close()
			if err != nil {
				for _, rest := range its[i+1:] {
					rest.close()
				}
				return err
			}
			continue
		}
		h.its, h.head = append(h.its, it), append(h.head, e)
	}
	heap.Init(h)
	for h.Len() > 0 {
		e := h.head[0]
		if err := fn(&e); err != nil {
			return err
		}
		next, ok, err := h.its[0].next()
		if err != nil {
			return err
		}
		if ok {
			h.head[0] = next
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return nil
}

// has reports whether partition p got any record.
func (s *sorter) has(p uint32) bool {
	for _, sh := range s.shards {
		ps := sh.parts[p]
		if len(ps.cur) > 0 || len(ps.chunks) > 0 || len(ps.runs) > 0 {
			return true
		}
	}
	return false
}

// release drops partition p's records once merged.
func (s *sorter) release(p uint32) {
	for _, sh := range s.shards {
		ps := sh.parts[p]
		for _, r := range ps.runs {
			os.Remove(r)
		}
		sh.parts[p] = &partSort{}
	}
}

// spilledBytes returns the bytes written to sorted runs.
func (s *sorter) spilledBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spilled
}
