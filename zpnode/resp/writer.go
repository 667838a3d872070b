package resp

import (
	"io"
	"math"
	"strconv"
)

// Protocol versions a connection speaks; HELLO switches between them.
const (
	RESP2 = 2
	RESP3 = 3
)

// Writer encodes replies for one connection, in RESP2 or RESP3, appending
// them to a buffer that Flush writes out. Types RESP2 lacks are sent as
// Redis sends them to a RESP2 client (a map as a flat array, a double as a
// bulk string, a boolean as 0 or 1, ...). Aggregates are written as a header
// (WriteArrayLen, WriteMapLen, ...) followed by their elements.
//
// Encoding never fails, so only Flush returns an error; after a failed
// Flush every Flush returns that error. Buffered tells the server how much
// output a client has not taken, to enforce an output buffer limit. Once
// its buffer has grown, a Writer appends replies without allocating.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	w     io.Writer
	buf   []byte
	proto int
	err   error
}

// NewWriter returns a Writer to w speaking RESP2, Redis's default until HELLO.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, DefaultBufferSize), proto: RESP2}
}

// Reset discards buffered output and any error, and makes w write to wr in
// RESP2.
func (w *Writer) Reset(wr io.Writer) {
	w.w, w.buf, w.proto, w.err = wr, w.buf[:0], RESP2, nil
}

// SetProtocol sets the protocol of the replies that follow, RESP2 or RESP3
// (any other value is taken as RESP2).
func (w *Writer) SetProtocol(proto int) {
	if proto != RESP3 {
		proto = RESP2
	}
	w.proto = proto
}

// Protocol returns RESP2 or RESP3.
func (w *Writer) Protocol() int { return w.proto }

// Buffered returns the bytes encoded and not yet flushed.
func (w *Writer) Buffered() int { return len(w.buf) }

// Flush writes the buffered replies out.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.w.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
		return err
	}
	w.buf = w.buf[:0]
	if cap(w.buf) > shrinkAbove {
		w.buf = make([]byte, 0, DefaultBufferSize) // do not pin a large reply's buffer
	}
	return nil
}

// WriteSimpleString writes "+s"; CR and LF in s become spaces, so the reply
// stays one line.
func (w *Writer) WriteSimpleString(s string) {
	w.buf = append(w.buf, '+')
	w.appendLine(s)
}

// WriteError writes "-msg". msg starts with the error code, as Redis's
// replies do ("ERR unknown command", "MOVED 3999 127.0.0.1:6381"); an empty
// msg writes "-ERR". CR and LF become spaces, as in Redis's
// addReplyErrorFormat. A *ProtocolError is sent as WriteError("ERR " +
// err.Error()).
func (w *Writer) WriteError(msg string) {
	if msg == "" {
		msg = "ERR"
	}
	w.buf = append(w.buf, '-')
	w.appendLine(msg)
}

func (w *Writer) appendLine(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.buf = append(w.buf, c)
	}
	w.buf = append(w.buf, '\r', '\n')
}

// WriteInt writes ":n".
func (w *Writer) WriteInt(n int64) {
	w.appendPrefixed(':', n)
}

// WriteBulk writes b as a bulk string ("$len\r\nb\r\n"); b is binary safe.
func (w *Writer) WriteBulk(b []byte) {
	w.appendPrefixed('$', int64(len(b)))
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, '\r', '\n')
}

// WriteBulkString writes s as a bulk string.
func (w *Writer) WriteBulkString(s string) {
	w.appendPrefixed('$', int64(len(s)))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// WriteNull writes the null reply: "$-1" (the null bulk) in RESP2, "_" in
// RESP3.
func (w *Writer) WriteNull() {
	if w.proto == RESP3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "$-1\r\n"...)
}

// WriteNullArray writes the null array: "*-1" in RESP2, "_" in RESP3.
func (w *Writer) WriteNullArray() {
	if w.proto == RESP3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "*-1\r\n"...)
}

// WriteArrayLen writes the header of an array of n elements.
func (w *Writer) WriteArrayLen(n int) {
	w.appendPrefixed('*', int64(n))
}

// WriteMapLen writes the header of a map of n key-value pairs: "%n" in
// RESP3, an array of 2n elements in RESP2.
func (w *Writer) WriteMapLen(n int) {
	if w.proto == RESP3 {
		w.appendPrefixed('%', int64(n))
		return
	}
	w.appendPrefixed('*', 2*int64(n))
}

// WriteSetLen writes the header of a set of n elements: "~n" in RESP3, an
// array in RESP2.
func (w *Writer) WriteSetLen(n int) {
	if w.proto == RESP3 {
		w.appendPrefixed('~', int64(n))
		return
	}
	w.appendPrefixed('*', int64(n))
}

// WritePushLen writes the header of an out-of-band push of n elements:
// ">n" in RESP3, an array in RESP2 (how Redis sends pub/sub messages to a
// RESP2 client).
func (w *Writer) WritePushLen(n int) {
	if w.proto == RESP3 {
		w.appendPrefixed('>', int64(n))
		return
	}
	w.appendPrefixed('*', int64(n))
}

// WriteDouble writes f as Redis 7.0 does: ",f" in RESP3, a bulk string in
// RESP2, formatted "%.17g", with "inf", "-inf" and "nan".
func (w *Writer) WriteDouble(f float64) {
	var num [32]byte
	var b []byte
	switch {
	case math.IsInf(f, 1):
		b = append(num[:0], "inf"...)
	case math.IsInf(f, -1):
		b = append(num[:0], "-inf"...)
	case math.IsNaN(f):
		b = append(num[:0], "nan"...)
	default:
		b = strconv.AppendFloat(num[:0], f, 'g', 17, 64)
	}
	if w.proto == RESP3 {
		w.buf = append(w.buf, ',')
		w.buf = append(w.buf, b...)
		w.buf = append(w.buf, '\r', '\n')
		return
	}
	w.WriteBulk(b)
}

// WriteBool writes "#t" or "#f" in RESP3, the integer 1 or 0 in RESP2.
func (w *Writer) WriteBool(b bool) {
	switch {
	case w.proto == RESP3 && b:
		w.buf = append(w.buf, "#t\r\n"...)
	case w.proto == RESP3:
		w.buf = append(w.buf, "#f\r\n"...)
	case b:
		w.buf = append(w.buf, ":1\r\n"...)
	default:
		w.buf = append(w.buf, ":0\r\n"...)
	}
}

// WriteVerbatim writes s as a verbatim string of format ext ("txt", "mkd";
// padded or cut to 3 bytes, as Redis does): "=len\r\next:s" in RESP3, a bulk
// string of s in RESP2.
func (w *Writer) WriteVerbatim(ext string, s []byte) {
	if w.proto != RESP3 {
		w.WriteBulk(s)
		return
	}
	w.appendPrefixed('=', int64(len(s))+4)
	for i := 0; i < 3; i++ {
		c := byte(' ')
		if i < len(ext) {
			c = ext[i]
		}
		w.buf = append(w.buf, c)
	}
	w.buf = append(w.buf, ':')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// WriteBigNumber writes the decimal num as "(num" in RESP3, a bulk string
// in RESP2. num is not checked.
func (w *Writer) WriteBigNumber(num string) {
	if w.proto != RESP3 {
		w.WriteBulkString(num)
		return
	}
	w.buf = append(w.buf, '(')
	w.appendLine(num)
}

// appendPrefixed appends a type byte, n and CRLF.
func (w *Writer) appendPrefixed(prefix byte, n int64) {
	w.buf = append(w.buf, prefix)
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.buf = append(w.buf, '\r', '\n')
}
