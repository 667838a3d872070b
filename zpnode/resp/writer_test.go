package resp

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"testing"
)

func TestWriterBytes(t *testing.T) {
	tests := []struct {
		name         string
		write        func(w *Writer)
		resp2, resp3 string
	}{
		{"simple string", func(w *Writer) { w.WriteSimpleString("OK") }, "+OK\r\n", "+OK\r\n"},
		{"simple string with newlines", func(w *Writer) { w.WriteSimpleString("a\r\nb") }, "+a  b\r\n", "+a  b\r\n"},
		{"error", func(w *Writer) { w.WriteError("ERR unknown command 'FOO'") }, "-ERR unknown command 'FOO'\r\n", "-ERR unknown command 'FOO'\r\n"},
		{"moved", func(w *Writer) { w.WriteError("MOVED 3999 127.0.0.1:6381") }, "-MOVED 3999 127.0.0.1:6381\r\n", "-MOVED 3999 127.0.0.1:6381\r\n"},
		{"empty error", func(w *Writer) { w.WriteError("") }, "-ERR\r\n", "-ERR\r\n"},
		{"protocol error", func(w *Writer) { w.WriteError("ERR " + expectedDollar('\r').Error()) },
			"-ERR Protocol error: expected '$', got ' '\r\n", "-ERR Protocol error: expected '$', got ' '\r\n"},
		{"integer", func(w *Writer) { w.WriteInt(-42) }, ":-42\r\n", ":-42\r\n"},
		{"integer min", func(w *Writer) { w.WriteInt(math.MinInt64) }, ":-9223372036854775808\r\n", ":-9223372036854775808\r\n"},
		{"bulk", func(w *Writer) { w.WriteBulk([]byte("a\r\nb\x00")) }, "$5\r\na\r\nb\x00\r\n", "$5\r\na\r\nb\x00\r\n"},
		{"empty bulk", func(w *Writer) { w.WriteBulk(nil) }, "$0\r\n\r\n", "$0\r\n\r\n"},
		{"bulk string", func(w *Writer) { w.WriteBulkString("hello") }, "$5\r\nhello\r\n", "$5\r\nhello\r\n"},
		{"null", func(w *Writer) { w.WriteNull() }, "$-1\r\n", "_\r\n"},
		{"null array", func(w *Writer) { w.WriteNullArray() }, "*-1\r\n", "_\r\n"},
		{"array", func(w *Writer) { w.WriteArrayLen(2); w.WriteInt(1); w.WriteBulkString("a") }, "*2\r\n:1\r\n$1\r\na\r\n", "*2\r\n:1\r\n$1\r\na\r\n"},
		{"empty array", func(w *Writer) { w.WriteArrayLen(0) }, "*0\r\n", "*0\r\n"},
		{"map", func(w *Writer) { w.WriteMapLen(1); w.WriteBulkString("k"); w.WriteInt(7) }, "*2\r\n$1\r\nk\r\n:7\r\n", "%1\r\n$1\r\nk\r\n:7\r\n"},
		{"set", func(w *Writer) { w.WriteSetLen(1); w.WriteBulkString("m") }, "*1\r\n$1\r\nm\r\n", "~1\r\n$1\r\nm\r\n"},
		{"push", func(w *Writer) { w.WritePushLen(2); w.WriteBulkString("message"); w.WriteBulkString("x") },
			"*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", ">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n"},
		{"double", func(w *Writer) { w.WriteDouble(3.1) }, "$18\r\n3.1000000000000001\r\n", ",3.1000000000000001\r\n"},
		{"double integral", func(w *Writer) { w.WriteDouble(100) }, "$3\r\n100\r\n", ",100\r\n"},
		{"double inf", func(w *Writer) { w.WriteDouble(math.Inf(1)) }, "$3\r\ninf\r\n", ",inf\r\n"},
		{"double -inf", func(w *Writer) { w.WriteDouble(math.Inf(-1)) }, "$4\r\n-inf\r\n", ",-inf\r\n"},
		{"double nan", func(w *Writer) { w.WriteDouble(math.NaN()) }, "$3\r\nnan\r\n", ",nan\r\n"},
		{"boolean true", func(w *Writer) { w.WriteBool(true) }, ":1\r\n", "#t\r\n"},
		{"boolean false", func(w *Writer) { w.WriteBool(false) }, ":0\r\n", "#f\r\n"},
		{"verbatim", func(w *Writer) { w.WriteVerbatim("txt", []byte("Some string")) }, "$11\r\nSome string\r\n", "=15\r\ntxt:Some string\r\n"},
		{"verbatim short format", func(w *Writer) { w.WriteVerbatim("md", []byte("x")) }, "$1\r\nx\r\n", "=5\r\nmd :x\r\n"},
		{"verbatim long format", func(w *Writer) { w.WriteVerbatim("markdown", []byte("x")) }, "$1\r\nx\r\n", "=5\r\nmar:x\r\n"},
		{"big number", func(w *Writer) { w.WriteBigNumber("3492890328409238509324850943850943825024385") },
			"$43\r\n3492890328409238509324850943850943825024385\r\n", "(3492890328409238509324850943850943825024385\r\n"},
	}
	for _, tt := range tests {
		for _, proto := range []int{RESP2, RESP3} {
			var out bytes.Buffer
			w := NewWriter(&out)
			w.SetProtocol(proto)
			tt.write(w)
			if out.Len() != 0 {
				t.Fatalf("%s: written before Flush", tt.name)
			}
			n := w.Buffered()
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			want := tt.resp2
			if proto == RESP3 {
				want = tt.resp3
			}
			if out.String() != want || n != len(want) {
				t.Errorf("%s RESP%d: %q (Buffered %d), want %q", tt.name, proto, out.String(), n, want)
			}
		}
	}
}

// TestWriterDoubleFormat checks the "%.17g" of Redis 7.0 against C's
// printf output (Python's % operator).
func TestWriterDoubleFormat(t *testing.T) {
	for f, want := range map[float64]string{
		3.1: "3.1000000000000001", 1: "1", 0.1: "0.10000000000000001", 1e20: "1e+20",
		1e-5: "1.0000000000000001e-05", 123456789012345678: "1.2345678901234568e+17",
		-2.5: "-2.5", 0: "0", math.Copysign(0, -1): "-0", 1.5e-7: "1.4999999999999999e-07",
		1e16: "10000000000000000", 1e17: "1e+17", 0.0001: "0.0001", 5e-324: "4.9406564584124654e-324",
	} {
		var out bytes.Buffer
		w := NewWriter(&out)
		w.SetProtocol(RESP3)
		w.WriteDouble(f)
		w.Flush()
		if got := out.String(); got != ","+want+"\r\n" {
			t.Errorf("%v: %q, want %q", f, got, want)
		}
	}
}

func TestWriterProtocol(t *testing.T) {
	w := NewWriter(nil)
	if w.Protocol() != RESP2 {
		t.Fatal("default protocol not RESP2")
	}
	w.SetProtocol(3)
	if w.Protocol() != RESP3 {
		t.Fatal("not RESP3")
	}
	w.SetProtocol(4)
	if w.Protocol() != RESP2 {
		t.Fatal("unknown protocol not RESP2")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) { return f.n, errors.New("broken pipe") }

func TestWriterFlushError(t *testing.T) {
	w := NewWriter(&failWriter{})
	w.WriteSimpleString("OK")
	err := w.Flush()
	if err == nil || w.Flush() != err {
		t.Fatalf("Flush error not sticky: %v", err)
	}
	w.Reset(&bytes.Buffer{})
	w.WriteSimpleString("OK")
	if err := w.Flush(); err != nil || w.Buffered() != 0 {
		t.Fatalf("after Reset: %v, %d buffered", err, w.Buffered())
	}
	// A short write without an error is an error.
	w.Reset(&failWriter{n: 1})
	w.WriteSimpleString("OK")
	if w.Flush() == nil {
		t.Fatal("short write not reported")
	}
}

func TestWriterShrinksAfterLargeReply(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.WriteBulk(make([]byte, 2<<20))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if cap(w.buf) != DefaultBufferSize {
		t.Fatalf("buffer of %d bytes kept", cap(w.buf))
	}
}

func TestWriterNoAllocs(t *testing.T) {
	w := NewWriter(discard{})
	val := bytes.Repeat([]byte("v"), 100)
	allocs := testing.AllocsPerRun(100, func() {
		for _, proto := range []int{RESP2, RESP3} {
			w.SetProtocol(proto)
			w.WriteArrayLen(9)
			w.WriteBulk(val)
			w.WriteInt(12345)
			w.WriteSimpleString("OK")
			w.WriteError("MOVED 1 127.0.0.1:7000")
			w.WriteNull()
			w.WriteDouble(3.25)
			w.WriteBool(true)
			w.WriteMapLen(0)
			w.WriteVerbatim("txt", val)
			w.WriteBigNumber(strconv.Itoa(7))
		}
		w.Flush()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
