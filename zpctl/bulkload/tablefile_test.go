package bulkload

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

// TestTableFileReadAsItGrows: chunks read while the writer appends are
// the finished file's bytes, the last one says so, and a writer's failure
// reaches the reader instead of a short file.
func TestTableFileReadAsItGrows(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		pieces int
		fail   bool
	}{
		{"finished", 37, false},
		{"exact chunks", 32, false}, // 32 pieces of 100 bytes: a multiple of the chunk
		{"writer fails", 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.sst")
			w, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			tf := newTableFile(path)
			r, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var want bytes.Buffer
			go func() {
				for i := range tc.pieces {
					piece := bytes.Repeat([]byte{byte('a' + i%26)}, 100)
					w.Write(piece)
					want.Write(piece)
					tf.grown()
				}
				if tc.fail {
					tf.finish(ctx, 0, errors.New("disk full"))
					return
				}
				tf.finish(ctx, uint64(tc.pieces), nil)
			}()
			var got bytes.Buffer
			buf := make([]byte, 400)
			for {
				n, last, err := tf.readChunk(ctx, r, int64(got.Len()), buf)
				if tc.fail && err != nil {
					if got.Len() > tc.pieces*100 {
						t.Fatalf("read %d bytes of %d", got.Len(), tc.pieces*100)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got.Write(buf[:n])
				if last {
					break
				}
				if n != len(buf) {
					t.Fatalf("a chunk of %d bytes that is not the last", n)
				}
			}
			if tc.fail {
				t.Fatal("the writer's failure did not reach the reader")
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) || int64(got.Len()) != tf.size {
				t.Fatalf("read %d bytes (size %d), want %d", got.Len(), tf.size, want.Len())
			}
			crc, _, err := dbsync.FileCRC(ctx, path)
			if err != nil || crc != tf.crc {
				t.Fatalf("crc %08x, file's %08x (%v)", tf.crc, crc, err)
			}
		})
	}
}
