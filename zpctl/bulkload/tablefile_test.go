package bulkload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/rpc/rpctest"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/backup"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

// TestTableFileReadAsItGrows: chunks taken while the writer appends are
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
				n, last, err := tf.chunk(ctx, r, int64(got.Len()), int64(len(buf)))
				if err == nil {
					_, err = r.ReadAt(buf[:n], int64(got.Len()))
				}
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
				if n != int64(len(buf)) {
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

// TestStageChunks: stage sends a node that takes attachments each chunk
// as one (after an empty first chunk that asks), and one that does not
// (an older node) each chunk in the request; either way the chunks make
// the file, in order, and the last one carries its size and checksum.
func TestStageChunks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "p.sst")
	content := make([]byte, 2*ChunkSize+12345)
	for i := range content {
		content[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	tf := newTableFile(path)
	tf.finish(ctx, 1, nil)

	for _, takes := range []bool{true, false} {
		t.Run(fmt.Sprintf("takes attachments %v", takes), func(t *testing.T) {
			var mu sync.Mutex
			var got bytes.Buffer
			var modes []string
			var last *zppb.BulkStageRequest
			addr := rpctest.Serve(t, func(ctx context.Context, req *zppb.Request) *zppb.Response {
				mu.Lock()
				defer mu.Unlock()
				st := req.GetBulkStage()
				data, mode := st.Data, "data"
				if a := rpc.AttachmentOf(ctx); a != nil {
					data, mode = a, "attached"
				}
				if st.Offset != uint64(got.Len()) {
					return &zppb.Response{Code: zppb.Code_INVALID_ARGUMENT, Msg: fmt.Sprintf("chunk at %d, have %d", st.Offset, got.Len())}
				}
				got.Write(data)
				modes = append(modes, fmt.Sprintf("%s %d", mode, len(data)))
				if st.Last {
					last = st
				}
				return &zppb.Response{Result: &zppb.Response_BulkStage{BulkStage: &zppb.BulkStageResponse{Have: uint64(got.Len()), TakesAttachment: takes}}}
			})
			opts := Options{Table: "t", CallTimeout: 10 * time.Second, ShipBytes: &atomic.Int64{},
				Dial: func(ctx context.Context, addr string) (backup.Conn, error) { return rpc.Dial(ctx, addr, 0) }}
			if err := stage(ctx, opts, addr, 3, "id1", tf); err != nil {
				t.Fatal(err)
			}
			mode := "data"
			if takes {
				mode = "attached"
			}
			want := []string{"data 0", fmt.Sprintf("%s %d", mode, ChunkSize), fmt.Sprintf("%s %d", mode, ChunkSize), fmt.Sprintf("%s 12345", mode)}
			if fmt.Sprint(modes) != fmt.Sprint(want) {
				t.Errorf("chunks %v, want %v", modes, want)
			}
			if !bytes.Equal(got.Bytes(), content) {
				t.Errorf("the chunks make %d bytes, not the file's %d", got.Len(), len(content))
			}
			if last == nil || last.Size != uint64(len(content)) || last.Crc32C != tf.crc {
				t.Errorf("last chunk %v, want size %d and crc %08x", last, len(content), tf.crc)
			}
			if n := opts.ShipBytes.Load(); n != int64(len(content)) {
				t.Errorf("shipped %d bytes, want %d", n, len(content))
			}
		})
	}
}
