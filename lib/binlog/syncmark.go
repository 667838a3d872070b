package binlog

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Open must not claim records durable that only the page cache holds (a
// process killed after write(2), before its fdatasync), so it used to
// fdatasync the last segment at every start: 1-2 ms a log, seconds for a
// node of thousands. The synced mark lets it skip that when the segment is
// known to be on disk: Park and Close, right after their fdatasync, note
// the active segment and its size in it. Segments only grow between a
// Park or Close and the next Open, so a segment still that size is exactly
// what was synced; TruncateAfter and Reset, which shrink or replace it,
// remove the mark first.
//
// The mark itself is written without a sync: it reaches the disk after the
// segment data it vouches for, or not at all (then Open syncs), and a torn
// one fails its checksum.
const syncedMarkFile = "SYNCED"

// syncedMark is what the mark says: segment (a file name) was synced at
// size bytes.
type syncedMark struct {
	segment string
	size    int64
}

func (m syncedMark) encode() []byte {
	body := m.segment + " " + strconv.FormatInt(m.size, 10)
	return fmt.Appendf(nil, "%s %08x\n", body, crc32.Checksum([]byte(body), castagnoli))
}

// readSyncedMark returns the log's synced mark; ok is false when there is
// none or it does not check out.
func readSyncedMark(dir string) (m syncedMark, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, syncedMarkFile))
	if err != nil {
		return syncedMark{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return syncedMark{}, false
	}
	size, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return syncedMark{}, false
	}
	m = syncedMark{segment: f[0], size: size}
	if string(m.encode()) != string(b) {
		return syncedMark{}, false
	}
	return m, true
}

// writeSyncedMarkLocked notes that the active segment was just synced. A
// failure only costs the next Open a sync.
func (l *Log) writeSyncedMarkLocked() {
	seg := l.activeSegment()
	m := syncedMark{segment: filepath.Base(seg.path), size: seg.size}
	path := filepath.Join(l.dir, syncedMarkFile)
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, m.encode(), 0o644)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		l.logger.Debug("binlog: cannot write synced mark", "err", err)
	}
}

// removeSyncedMark removes the mark before the active segment shrinks or
// goes; the caller syncs the directory before it relies on that.
func removeSyncedMark(dir string) error {
	if err := os.Remove(filepath.Join(dir, syncedMarkFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("binlog: %w", err)
	}
	return nil
}
