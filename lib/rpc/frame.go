// Package rpc carries protocol messages over TCP: 4-byte big-endian length
// prefixed protobuf frames, pipelined, answered in order.
package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

// ReadFrame reads one frame from r into buf (grown as needed) and returns the
// payload, which aliases buf.
func ReadFrame(r *bufio.Reader, buf []byte, limit int) ([]byte, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return buf, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > limit {
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
