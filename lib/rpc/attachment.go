package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Attachments: raw bytes that follow a request's frame on the connection
// (Request.attachment_size says how many). A bulk load's table file
// chunks travel so: inside the protobuf message, each 4 MiB chunk was
// copied by the marshalling on the sender and again by the unmarshalling
// on the receiver, into fresh memory each time, which was a tenth of a
// bulk load's CPU; as an attachment, the sender's kernel sends it from
// the file (sendfile) and the receiver reads it into a reused buffer.
// Only a server that says it takes them gets them (an older one would
// read them as frames).

// Attachment is the raw bytes sent after a request: Bytes, or else Size
// bytes of File from its current offset, which the send advances.
type Attachment struct {
	Bytes []byte
	File  *os.File
	Size  int64
}

func (a *Attachment) len() int64 {
	if a.File != nil {
		return a.Size
	}
	return int64(len(a.Bytes))
}

// ErrAttachment means an attachment could not be sent whole (its file was
// shorter than said); the connection is closed, since the server reads
// the bytes promised.
var ErrAttachment = errors.New("rpc: attachment")

// writeTo writes the attachment to w; from a file, by sendfile when w is
// a TCP connection.
func (a *Attachment) writeTo(w io.Writer) error {
	if a.File == nil {
		_, err := w.Write(a.Bytes)
		return err
	}
	n, err := io.Copy(w, &io.LimitedReader{R: a.File, N: a.Size})
	if err == nil && n != a.Size {
		err = fmt.Errorf("%w: %s ended after %d of %d bytes", ErrAttachment, a.File.Name(), n, a.Size)
	}
	return err
}

type attachmentKey struct{}

// AttachmentOf returns the attachment that came with the request ctx is
// the context of (nil when none). It is valid only until the handler
// returns: its buffer is reused for the connection's next ones.
func AttachmentOf(ctx context.Context) []byte {
	b, _ := ctx.Value(attachmentKey{}).([]byte)
	return b
}

// withAttachment returns ctx carrying a request's attachment.
func withAttachment(ctx context.Context, b []byte) context.Context {
	return context.WithValue(ctx, attachmentKey{}, b)
}
