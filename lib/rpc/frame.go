// Package rpc carries protocol messages over TCP: 4-byte big-endian length
// prefixed protobuf frames, pipelined, answered in order; a request may be
// followed by raw bytes, its attachment (attachment.go).
package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultMaxFrameSize is the largest frame accepted unless configured: large
// enough for a maximal key and value in one request.
const DefaultMaxFrameSize = 64 << 20

// headerSize is the length prefix of a frame.
const headerSize = 4

var (
	// ErrFrameTooLarge means a frame's length is over the limit; the
	// connection cannot be resynchronised and is closed.
	ErrFrameTooLarge = errors.New("rpc: frame too large")
	// ErrForeignProtocol means the peer's first bytes are text, not a
	// frame's length: it speaks another protocol (an HTTP or Redis server,
	// an SSH daemon...). The length those bytes make is always over the
	// limit, which is what caught it, so the error matches
	// ErrFrameTooLarge too.
	ErrForeignProtocol = errors.New("rpc: the peer speaks another protocol")
	// ErrTransport wraps every failure of a connection: dial, read, write,
	// abandoned calls. The request may or may not have been applied.
	ErrTransport = errors.New("rpc: transport")
	// ErrClosed means the connection or pool was closed.
	ErrClosed = errors.New("rpc: connection closed")
	// ErrNotSent wraps a failure that certainly happened before any byte
	// of the request left this process (the dial failed, the connection
	// was already closed, the call gave up while queued), so the server
	// cannot have acted on it. Its absence proves nothing: a transport
	// failure without it may or may not have reached the server.
	ErrNotSent = errors.New("rpc: request not sent")
)

// maxKeptBuffer is the largest frame buffer a connection keeps between
// frames. Above it a buffer is dropped after use: a meta leader answering a
// thousand nodes a 189 KB delta each would otherwise hold 189 MB that the
// next PINGs, a few hundred bytes each, never need.
const maxKeptBuffer = 64 << 10

// keepBuffer returns buf to keep for the next frame, or nil when it is too
// big to keep.
func keepBuffer(buf []byte) []byte {
	if cap(buf) > maxKeptBuffer {
		return nil
	}
	return buf
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns the
// payload, which aliases buf.
func ReadFrame(r *bufio.Reader, buf []byte, limit int) ([]byte, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return buf, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > limit {
		if text(hdr[:]) {
			// "HTTP", "-ERR", "SSH-": say what the peer is rather than
			// how large a frame its words would make.
			start, _ := r.Peek(min(r.Buffered(), foreignQuote))
			return buf, &ForeignProtocolError{Sent: firstLine(hdr[:], start)}
		}
		return buf, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

// ForeignProtocolError is ReadFrame's error for a peer that speaks another
// protocol; it matches ErrForeignProtocol and ErrFrameTooLarge.
type ForeignProtocolError struct {
	// Addr is the peer, when the connection knows it ("" from ReadFrame).
	Addr string
	// Sent is the start of what the peer sent, up to its first line end.
	Sent string
}

func (e *ForeignProtocolError) Error() string {
	if e.Addr == "" {
		return fmt.Sprintf("rpc: the peer speaks another protocol (it sent %q)", e.Sent)
	}
	return fmt.Sprintf("%s is not a Zeppelin server (it sent %q)", e.Addr, e.Sent)
}

// Is matches ErrForeignProtocol and ErrFrameTooLarge.
func (e *ForeignProtocolError) Is(target error) bool {
	return target == ErrForeignProtocol || target == ErrFrameTooLarge
}

// foreignQuote is how much of a foreign peer's reply an error quotes.
const foreignQuote = 60

// text reports whether b is printable ASCII, as the start of a text
// protocol is and a frame length within any sane limit is not (the
// smallest, "    ", is 512 MiB).
func text(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// firstLine is hdr and what follows it, up to the first line end.
func firstLine(hdr, rest []byte) string {
	s := string(hdr) + string(rest)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// WriteFrame writes payload as one frame to w. It does not flush.
func WriteFrame(w *bufio.Writer, payload []byte, limit int) error {
	if len(payload) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(payload), limit)
	}
	var hdr [headerSize]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// frameBuffered reports whether r already holds a whole frame, i.e. whether a
// server can keep reading without first flushing the responses it owes.
func frameBuffered(r *bufio.Reader) bool {
	if r.Buffered() < headerSize {
		return false
	}
	hdr, err := r.Peek(headerSize)
	if err != nil {
		return false
	}
	return r.Buffered() >= headerSize+int(binary.BigEndian.Uint32(hdr))
}
