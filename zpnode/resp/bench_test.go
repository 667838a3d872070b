package resp

import (
	"bytes"
	"io"
	"strconv"
	"testing"
)

// loopReader returns data again and again.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

// setPipeline is 16 "SET key<i> <100-byte value>" multibulk requests.
func setPipeline() []byte {
	val := bytes.Repeat([]byte("v"), 100)
	var b []byte
	for i := 0; i < 16; i++ {
		b = appendMultibulk(b, [][]byte{[]byte("SET"), []byte("key:" + strconv.Itoa(i)), val})
	}
	return b
}

// BenchmarkReaderPipeline parses a 16-command pipeline of SETs with
// 100-byte values the way a server does (ReadCommand, then TryReadCommand
// for the rest), with the arguments aliasing the buffer ("alias") and, for
// comparison, copied out as a copying reader would return them ("copy").
func BenchmarkReaderPipeline(b *testing.B) {
	data := setPipeline()
	for _, mode := range []string{"alias", "copy"} {
		b.Run(mode, func(b *testing.B) {
			r := NewReader(&loopReader{data: data}, Limits{})
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				args, err := r.ReadCommand()
				for n := 0; ; n++ {
					if err != nil {
						b.Fatal(err)
					}
					if mode == "copy" {
						own := make([][]byte, len(args))
						for j, a := range args {
							own[j] = append([]byte(nil), a...)
						}
						args = own
					}
					if len(args) != 3 {
						b.Fatalf("%q", args)
					}
					if n == 15 {
						break
					}
					var ok bool
					args, ok, err = r.TryReadCommand()
					if !ok && err == nil {
						args, err = r.ReadCommand() // the pipeline straddles reads
					}
				}
			}
		})
	}
}

// BenchmarkReaderInline parses "SET key value" inline commands.
func BenchmarkReaderInline(b *testing.B) {
	data := []byte("SET key:1 \"a quoted\\x20value\"\r\n")
	r := NewReader(&loopReader{data: data}, Limits{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if args, err := r.ReadCommand(); err != nil || len(args) != 3 {
			b.Fatalf("%q %v", args, err)
		}
	}
}

// BenchmarkWriterBulk writes 16 bulk replies of 100 bytes and flushes them.
func BenchmarkWriterBulk(b *testing.B) {
	val := bytes.Repeat([]byte("v"), 100)
	for _, proto := range []int{RESP2, RESP3} {
		b.Run("RESP"+strconv.Itoa(proto), func(b *testing.B) {
			w := NewWriter(io.Discard)
			w.SetProtocol(proto)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for j := 0; j < 16; j++ {
					w.WriteBulk(val)
				}
				if err := w.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
