package resp

import (
	"bytes"
	"errors"
	"io"
)

// Redis's defaults (src/server.h and src/config.c of Redis 7.0.15).
const (
	// DefaultMaxInline is PROTO_INLINE_MAX_SIZE.
	DefaultMaxInline = 64 << 10
	// DefaultMaxArgs is the multibulk count Redis refused above until 7.0
	// ("more than 1M arguments").
	DefaultMaxArgs = 1 << 20
	// DefaultMaxBulk is proto-max-bulk-len.
	DefaultMaxBulk = 512 << 20
	// DefaultMaxQueryBuffer is client-query-buffer-limit.
	DefaultMaxQueryBuffer = 1 << 30
	// DefaultBufferSize is PROTO_IOBUF_LEN, the first read buffer.
	DefaultBufferSize = 16 << 10
)

// shrinkAbove is the buffer capacity an idle Reader gives back, so that
// one large command does not pin its buffer to the connection (the native
// server drops its frame buffer above the same size).
const shrinkAbove = 1 << 20

// Limits bounds what one client request may make the Reader hold. A zero
// field takes its default.
type Limits struct {
	// MaxInline bounds an inline request line and a "*<count>" or
	// "$<length>" line, in bytes before the line feed.
	MaxInline int
	// MaxArgs bounds the count of a multibulk request.
	MaxArgs int
	// MaxBulk bounds one bulk argument; the server sets it to the value
	// limit plus slack.
	MaxBulk int
	// MaxQueryBuffer bounds the bytes one incomplete command may buffer;
	// it should exceed MaxBulk.
	MaxQueryBuffer int
	// BufferSize is the first (and idle) size of the read buffer.
	BufferSize int
}

// DefaultLimits returns Redis's limits.
func DefaultLimits() Limits {
	return Limits{
		MaxInline:      DefaultMaxInline,
		MaxArgs:        DefaultMaxArgs,
		MaxBulk:        DefaultMaxBulk,
		MaxQueryBuffer: DefaultMaxQueryBuffer,
		BufferSize:     DefaultBufferSize,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxInline <= 0 {
		l.MaxInline = d.MaxInline
	}
	if l.MaxArgs <= 0 {
		l.MaxArgs = d.MaxArgs
	}
	if l.MaxBulk <= 0 {
		l.MaxBulk = d.MaxBulk
	}
	if l.MaxQueryBuffer <= 0 {
		l.MaxQueryBuffer = d.MaxQueryBuffer
	}
	if l.BufferSize <= 0 {
		l.BufferSize = d.BufferSize
	}
	if l.BufferSize > l.MaxQueryBuffer {
		l.BufferSize = l.MaxQueryBuffer
	}
	return l
}

// maxNoProgress is how many empty reads in a row fill tolerates, as bufio.
const maxNoProgress = 100

// Reader parses client requests from a connection: multibulk requests
// ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") and inline ones ("GET k\r\n").
//
// Arguments alias the Reader's buffer: the arguments of every command
// returned by ReadCommand and by the TryReadCommand calls after it stay
// valid, and unchanged, until the next ReadCommand (or Reset); callers that
// keep them longer copy them. This lets a server hold a whole pipeline (one
// ReadCommand, then TryReadCommand until it reports nothing buffered), start
// its writes as one group commit, answer them, and only then read again.
//
// A half-received command keeps its parse state, so input arriving in small
// pieces is scanned once. The buffer grows as bytes arrive, at most doubling
// and never beyond the declared size of the bulk being read, so a client
// declaring a 512 MB bulk and sending 3 bytes costs no more than the first
// buffer; an idle Reader whose buffer grew above 1 MiB gives it back.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	rd  io.Reader
	lim Limits

	buf  []byte
	r, w int // buf[r:w] is unconsumed; r starts the command being parsed
	rerr error
	err  error // the protocol error that ended the Reader

	// A multibulk request parsed in part; offsets are relative to r, so
	// they survive moving the command to the front of the buffer.
	multi bool  // its count was parsed
	left  int   // arguments still to parse
	bulk  int   // length of the argument being read; -1 before its "$" line
	pos   int   // parse position
	need  int   // bytes the argument being read needs in all; 0 if unknown
	offs  []int // start and end of each argument parsed

	args [][]byte // backs the arguments returned since the last ReadCommand

	unauth bool // the client has not authenticated: Redis's tighter limits
}

// NewReader returns a Reader of rd with lim (zero fields take Redis's
// defaults).
func NewReader(rd io.Reader, lim Limits) *Reader {
	r := &Reader{lim: lim.withDefaults()}
	r.Reset(rd)
	return r
}

// Reset discards all state (SetUnauthenticated too) and makes r read from
// rd, keeping its buffers unless they grew.
func (r *Reader) Reset(rd io.Reader) {
	buf, offs, args := r.buf, r.offs, r.args
	if cap(buf) != r.lim.BufferSize {
		buf = make([]byte, r.lim.BufferSize)
	}
	if cap(offs) > 8192 {
		offs = nil
	}
	if cap(args) > 4096 {
		args = nil
	}
	*r = Reader{rd: rd, lim: r.lim, buf: buf[:cap(buf)], bulk: -1, offs: offs[:0], args: args[:0]}
}

// SetUnauthenticated applies, while unauth is true, the limits Redis 7.0
// sets before a client authenticates when a password is required: at most
// 10 arguments and 16384-byte bulks, so that an unauthenticated client
// cannot make the server buffer much.
func (r *Reader) SetUnauthenticated(unauth bool) { r.unauth = unauth }

// Limits returns the limits in force, defaults filled in.
func (r *Reader) Limits() Limits { return r.lim }

// Buffered returns the bytes received and not yet returned as commands,
// including a command received in part.
func (r *Reader) Buffered() int { return r.w - r.r }

// BufferSize returns the size of the read buffer: the memory the Reader
// holds for its connection's input.
func (r *Reader) BufferSize() int { return len(r.buf) }

// ReadCommand returns the next command, reading from the connection as
// needed. Empty inline lines and "*0" or "*-1" requests are skipped, as
// Redis does. It invalidates the arguments returned before it (see Reader).
// A *ProtocolError or ErrQueryBufferLimit is final: the server answers the
// commands returned before it, sends the error, and closes. io.EOF means the
// client closed between commands, io.ErrUnexpectedEOF within one.
func (r *Reader) ReadCommand() ([][]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.args = r.args[:0]
	if cap(r.args) > 4096 {
		r.args = nil // do not pin the slices of a huge command
	}
	if cap(r.offs) > 8192 && !r.multi {
		r.offs = nil
	}
	for {
		args, ok, err := r.parse()
		if err != nil {
			r.err = err
			return nil, err
		}
		if ok {
			return args, nil
		}
		if err := r.fill(); err != nil {
			if _, ok := err.(*ProtocolError); ok || err == ErrQueryBufferLimit {
				r.err = err
			}
			return nil, err
		}
	}
}

// TryReadCommand returns the next command if it is already buffered,
// without reading or blocking; ok is false when none is (a partial command
// stays parsed in part for ReadCommand). The arguments returned since the
// last ReadCommand all stay valid.
func (r *Reader) TryReadCommand() (args [][]byte, ok bool, err error) {
	if r.err != nil {
		return nil, false, r.err
	}
	args, ok, err = r.parse()
	if err != nil {
		r.err = err
	}
	return args, ok, err
}

// parse returns the next complete command in the buffer, skipping empty
// ones; ok is false when the buffer holds no complete command.
func (r *Reader) parse() ([][]byte, bool, error) {
	for {
		if !r.multi {
			if r.r == r.w {
				return nil, false, nil
			}
			if r.buf[r.r] != '*' {
				args, ok, err := r.parseInline()
				if !ok || err != nil || len(args) > 0 {
					return args, ok, err
				}
				continue
			}
			ok, err := r.parseCount()
			if !ok || err != nil {
				return nil, false, err
			}
			if !r.multi {
				continue // "*0", "*-1"
			}
		}
		ok, err := r.parseBulks()
		if !ok || err != nil {
			return nil, false, err
		}
		return r.finish(), true, nil
	}
}

// line returns the index of the CR ending the line at p once that line and
// the byte after its CR are buffered, or -1. A line is found by its CR, as
// Redis does; the caller checks that a LF follows.
func (r *Reader) line(p int, tooBig error) (int, error) {
	end := r.w
	if end-p > r.lim.MaxInline+1 {
		end = p + r.lim.MaxInline + 1
	}
	i := bytes.IndexByte(r.buf[p:end], '\r')
	if i < 0 {
		if r.w-p > r.lim.MaxInline {
			return -1, tooBig
		}
		return -1, nil
	}
	if p+i+1 >= r.w {
		return -1, nil
	}
	return p + i, nil
}

// parseCount parses the "*<count>" line at r; ok is false when it is not
// all buffered.
func (r *Reader) parseCount() (ok bool, err error) {
	cr, err := r.line(r.r, ErrTooBigMultibulkCount)
	if cr < 0 {
		return false, err
	}
	n, valid := parseInt(r.buf[r.r+1 : cr])
	if !valid || r.buf[cr+1] != '\n' || n > int64(r.lim.MaxArgs) {
		return false, ErrInvalidMultibulkLength
	}
	if n > 10 && r.unauth {
		return false, ErrUnauthMultibulkLength
	}
	if n <= 0 {
		r.r = cr + 2
		return true, nil
	}
	r.multi, r.left, r.bulk, r.need = true, int(n), -1, 0
	r.pos = cr + 2 - r.r
	r.offs = r.offs[:0]
	return true, nil
}

// parseBulks parses the arguments of the multibulk request at r; ok is
// false until they are all buffered.
func (r *Reader) parseBulks() (ok bool, err error) {
	for r.left > 0 {
		p := r.r + r.pos
		if r.bulk < 0 {
			cr, err := r.line(p, ErrTooBigBulkCount)
			if cr < 0 {
				return false, err
			}
			if r.buf[p] != '$' {
				return false, expectedDollar(r.buf[p])
			}
			n, valid := parseInt(r.buf[p+1 : cr])
			if !valid || r.buf[cr+1] != '\n' || n < 0 || n > int64(r.lim.MaxBulk) {
				return false, ErrInvalidBulkLength
			}
			if n > 16384 && r.unauth {
				return false, ErrUnauthBulkLength
			}
			r.bulk = int(n)
			r.pos = cr + 2 - r.r
			r.need = r.pos + r.bulk + 2
			p = cr + 2
		}
		if r.w-p < r.bulk+2 {
			return false, nil
		}
		if r.buf[p+r.bulk] != '\r' || r.buf[p+r.bulk+1] != '\n' {
			return false, ErrInvalidBulkLength
		}
		r.offs = append(r.offs, r.pos, r.pos+r.bulk)
		r.pos += r.bulk + 2
		r.bulk, r.need = -1, 0
		r.left--
	}
	return true, nil
}

// finish returns the multibulk request just parsed and consumes it.
func (r *Reader) finish() [][]byte {
	start := len(r.args)
	for i := 0; i+1 < len(r.offs); i += 2 {
		a, b := r.r+r.offs[i], r.r+r.offs[i+1]
		r.args = append(r.args, r.buf[a:b:b])
	}
	r.r += r.pos
	r.multi, r.left, r.bulk, r.pos, r.need = false, 0, -1, 0, 0
	r.offs = r.offs[:0]
	return r.args[start:len(r.args):len(r.args)]
}

// parseInline parses the inline request at r; ok is false when its line is
// not all buffered. An empty line gives ok and no arguments.
func (r *Reader) parseInline() (args [][]byte, ok bool, err error) {
	end := r.w
	if end-r.r > r.lim.MaxInline+1 {
		end = r.r + r.lim.MaxInline + 1
	}
	i := bytes.IndexByte(r.buf[r.r:end], '\n')
	if i < 0 {
		if r.w-r.r > r.lim.MaxInline {
			return nil, false, ErrTooBigInline
		}
		return nil, false, nil
	}
	line := r.buf[r.r : r.r+i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	start := len(r.args)
	r.args, ok = splitArgs(r.args, line)
	if !ok {
		r.args = r.args[:start]
		return nil, false, ErrUnbalancedQuotes
	}
	r.r += i + 1
	return r.args[start:len(r.args):len(r.args)], true, nil
}

// fill reads once into the buffer, first moving the command being parsed
// to its front and growing it if it is full.
func (r *Reader) fill() error {
	if r.rerr != nil {
		err := r.rerr
		r.rerr = nil
		return r.eof(err)
	}
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	if r.w == 0 && !r.multi && len(r.buf) > shrinkAbove {
		r.buf = make([]byte, r.lim.BufferSize)
	}
	if r.w == len(r.buf) {
		if r.w >= r.lim.MaxQueryBuffer {
			return ErrQueryBufferLimit
		}
		r.grow()
	}
	for i := 0; i < maxNoProgress; i++ {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			return errors.New("resp: reader returned an invalid count")
		}
		r.w += n
		if n > 0 {
			r.rerr = err
			return nil
		}
		if err != nil {
			return r.eof(err)
		}
	}
	return io.ErrNoProgress
}

// eof turns io.EOF within a command into io.ErrUnexpectedEOF.
func (r *Reader) eof(err error) error {
	if err == io.EOF && (r.w > r.r || r.multi) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// grow enlarges the full buffer: doubling, so that a large bulk is copied
// a bounded number of times, but never beyond what the argument being read
// declared nor beyond MaxQueryBuffer, so a client cannot make the Reader
// allocate much more than it sent.
func (r *Reader) grow() {
	n := 2 * len(r.buf)
	if r.need > len(r.buf) && n > r.need {
		n = r.need
	}
	if n > r.lim.MaxQueryBuffer {
		n = r.lim.MaxQueryBuffer
	}
	buf := make([]byte, n)
	copy(buf, r.buf[:r.w])
	r.buf = buf
}

// parseInt parses a decimal as Redis's string2ll does: an optional '-',
// no '+', no leading zero, no space, fewer than 21 bytes, within int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1)/10 || v*10 > 1<<64-1-d {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}
