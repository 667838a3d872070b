package inproc

import (
	"sync"
)

// logTail keeps the last bytes written to it: the servers' log of a test
// cluster, shown only when the test fails. A test that fails once in a
// hundred runs on a busy machine is otherwise left with nothing to trace.
type logTail struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool // bytes were dropped from the front
}

func newLogTail(max int) *logTail { return &logTail{max: max} }

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) > l.max {
		// Drop the older half at once rather than a little on every
		// write, which would copy the whole buffer each time.
		keep := l.buf[len(l.buf)-l.max/2:]
		l.buf = append(l.buf[:0], keep...)
		l.cut = true
	}
	return len(p), nil
}

// String returns what is kept, marked when older lines were dropped.
func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		return "[older lines dropped]\n" + string(l.buf)
	}
	return string(l.buf)
}
