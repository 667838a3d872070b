package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// attachmentEcho answers GET with the request's attachment as the value
// (copied: its buffer is reused), and the key when it has none.
func attachmentEcho(ctx context.Context, req *zppb.Request) *zppb.Response {
	v := req.GetGet().GetKey()
	if a := AttachmentOf(ctx); a != nil {
		v = bytes.Clone(a)
	}
	return &zppb.Response{Result: &zppb.Response_Get{Get: &zppb.GetResponse{Value: v}}}
}

// TestAttachments: bytes and file attachments reach the handler whole
// and in step with the frames around them, on one connection.
func TestAttachments(t *testing.T) {
	_, addr := startServer(t, attachmentEcho, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	big := bytes.Repeat([]byte("0123456789abcdef"), 40<<10) // 640 KiB: above the pooled size
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name string
		att  *Attachment
		// seek is where the file is read from.
		seek int64
		want []byte
	}{
		{"none", nil, 0, []byte("k")},
		{"bytes", &Attachment{Bytes: []byte("small")}, 0, []byte("small")},
		{"large bytes", &Attachment{Bytes: big}, 0, big},
		{"file", &Attachment{File: f, Size: int64(len(big))}, 0, big},
		{"file section", &Attachment{File: f, Size: 1000}, 4096, big[4096:5096]},
		{"empty", &Attachment{}, 0, []byte("k")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.Seek(tc.seek, 0); err != nil {
				t.Fatal(err)
			}
			var resp *zppb.Response
			var err error
			if tc.att == nil {
				resp, err = c.Call(ctx, getReq("k"))
			} else {
				resp, err = c.CallAttached(ctx, getReq("k"), *tc.att)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetGet().GetValue(); !bytes.Equal(got, tc.want) {
				t.Fatalf("the handler got %d bytes (%.20q), want %d (%.20q)", len(got), got, len(tc.want), tc.want)
			}
			// The next frame is read as a frame: the stream is in step.
			if resp, err := c.Call(ctx, getReq("after")); err != nil || string(resp.GetGet().GetValue()) != "after" {
				t.Fatalf("call after: %v %v", resp, err)
			}
		})
	}
}

// TestAttachmentRefused: an attachment the server cannot take (over its
// frame limit) closes the connection before the handler runs; one the
// sender cannot send whole (a file shorter than said) fails the call and
// the connection, never a truncated request.
func TestAttachmentRefused(t *testing.T) {
	var calls atomic.Int32
	_, addr := startServer(t, func(ctx context.Context, req *zppb.Request) *zppb.Response {
		calls.Add(1)
		return attachmentEcho(ctx, req)
	}, 1<<16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The limit bounds the frame and its attachment together: an
	// attachment of exactly the limit is over it.
	for _, size := range []int{1 << 17, 1 << 16} {
		t.Run(fmt.Sprintf("%d bytes over the server's limit", size), func(t *testing.T) {
			c, err := Dial(ctx, addr, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.CallAttached(ctx, getReq("k"), Attachment{Bytes: make([]byte, size)})
			if !errors.Is(err, ErrTransport) {
				t.Fatalf("got %v, want the connection closed", err)
			}
			if n := calls.Load(); n != 0 {
				t.Fatalf("the handler ran %d times", n)
			}
		})
	}
	t.Run("over the sender's limit", func(t *testing.T) {
		c, err := Dial(ctx, addr, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.CallAttached(ctx, getReq("k"), Attachment{Bytes: make([]byte, 1<<16)}); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("got %v, want ErrFrameTooLarge", err)
		}
		// Nothing was sent: the connection goes on.
		if resp, err := c.Call(ctx, getReq("k")); err != nil || string(resp.GetGet().GetValue()) != "k" {
			t.Fatalf("call after: %v %v", resp, err)
		}
	})
	t.Run("short file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, []byte("only this"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c, err := Dial(ctx, addr, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		before := calls.Load()
		_, err = c.CallAttached(ctx, getReq("k"), Attachment{File: f, Size: 100})
		if !errors.Is(err, ErrAttachment) {
			t.Fatalf("got %v, want ErrAttachment", err)
		}
		if !c.Closed() {
			t.Fatal("the connection is still open after a short attachment")
		}
		if calls.Load() != before {
			t.Fatal("the handler ran a request whose attachment was short")
		}
	})
}
