package bulkload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

// errNoKeys: the partition's table file got no key (RocksDB writes no
// empty table), so there is nothing to ship.
var errNoKeys = errors.New("bulkload: no keys")

// tableFile is a partition's table file while its writer grows it. The
// replicas' uploads read it as it grows, so that shipping a partition
// overlaps writing (merging and compressing) it: RocksDB's table builder
// only appends, and a byte read before the file is finished is the byte
// the finished file has (the size and CRC-32C sent with the last chunk,
// taken from the finished file, check that on every replica).
type tableFile struct {
	path string

	mu sync.Mutex
	// grew is closed, and replaced, whenever the file grew or ended.
	grew chan struct{}
	done bool
	// Set once done: the outcome, and the finished file's size, checksum
	// and key count.
	err      error
	size     int64
	crc      uint32
	records  uint64
	finished time.Time
}

func newTableFile(path string) *tableFile {
	return &tableFile{path: path, grew: make(chan struct{})}
}

// grown tells readers the file grew.
func (t *tableFile) grown() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.done {
		close(t.grew)
		t.grew = make(chan struct{})
	}
}

// finish ends the file: err when writing it failed, else its key count.
func (t *tableFile) finish(ctx context.Context, records uint64, err error) {
	var size uint64
	var crc uint32
	if err == nil && records == 0 {
		err = errNoKeys
	}
	if err == nil {
		crc, size, err = dbsync.FileCRC(ctx, t.path)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done, t.err, t.size, t.crc, t.records = true, err, int64(size), crc, records
	t.finished = time.Now()
	close(t.grew)
}

// finishedAt returns when the file was finished (zero before).
func (t *tableFile) finishedAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.finished
}

// state returns a channel closed when the file next grows or ends, and,
// when it has ended, its outcome and size.
func (t *tableFile) state() (grew <-chan struct{}, done bool, size int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.grew, t.done, t.size, t.err
}

// wait waits until the file is finished.
func (t *tableFile) wait(ctx context.Context) error {
	for {
		grew, done, _, err := t.state()
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-grew:
		}
	}
}

// chunk waits until the file holds max bytes from off, or has ended, and
// returns how many bytes from off to send: max, or the finished file's
// last ones (last set). It returns the writer's error when writing
// failed. f is the file, open for reading.
func (t *tableFile) chunk(ctx context.Context, f *os.File, off, max int64) (n int64, last bool, err error) {
	for {
		grew, done, size, werr := t.state()
		if werr != nil {
			return 0, false, fmt.Errorf("writing the table file: %w", werr)
		}
		if done {
			if off > size {
				return 0, false, fmt.Errorf("table file %s: chunk at %d, its writer wrote %d bytes", t.path, off, size)
			}
			n = min(max, size-off)
			return n, off+n == size, nil
		}
		// Bytes the writer has written are final: it only appends.
		fi, err := f.Stat()
		if err != nil {
			return 0, false, err
		}
		if fi.Size()-off >= max {
			return max, false, nil
		}
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-grew:
		}
	}
}
