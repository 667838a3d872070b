package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads commands until an error, copying each one.
func readAll(r *Reader) ([][]string, error) {
	var cmds [][]string
	for {
		args, err := r.ReadCommand()
		if err != nil {
			return cmds, err
		}
		cmds = append(cmds, strs(args))
	}
}

func strs(args [][]byte) []string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = string(a)
	}
	return s
}

// splitReader returns its data in the pieces given, one per Read.
type splitReader struct{ parts [][]byte }

func (s *splitReader) Read(p []byte) (int, error) {
	for len(s.parts) > 0 && len(s.parts[0]) == 0 {
		s.parts = s.parts[1:]
	}
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	return n, nil
}

// readers yields the ways a test feeds in: at once, a byte at a time, and
// (for small inputs) split in two at every byte boundary.
func readers(in string) map[string]io.Reader {
	rs := map[string]io.Reader{
		"whole":    strings.NewReader(in),
		"one byte": iotest.OneByteReader(strings.NewReader(in)),
	}
	if len(in) > 2048 {
		delete(rs, "one byte")
		rs["half reads"] = iotest.HalfReader(strings.NewReader(in))
		return rs
	}
	for i := 1; i < len(in); i++ {
		rs[fmt.Sprintf("split at %d", i)] = &splitReader{[][]byte{[]byte(in[:i]), []byte(in[i:])}}
	}
	return rs
}

func TestReaderValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want [][]string
	}{
		{"multibulk", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [][]string{{"GET", "k"}}},
		{"pipeline", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n",
			[][]string{{"SET", "k", "v"}, {"GET", "k"}, {"PING"}}},
		{"binary bulk", "*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\x00\xffb\r\n", [][]string{{"ECHO", "a\r\n\x00\xffb"}}},
		{"empty bulk", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", [][]string{{"ECHO", ""}}},
		{"star zero and minus one skipped", "*0\r\n*-1\r\n*-5\r\n*1\r\n$4\r\nPING\r\n", [][]string{{"PING"}}},
		{"inline", "PING\r\n", [][]string{{"PING"}}},
		{"inline LF only", "SET k v\nGET k\n", [][]string{{"SET", "k", "v"}, {"GET", "k"}}},
		{"empty lines skipped", "\r\n\n   \r\n\t\nPING\r\n", [][]string{{"PING"}}},
		{"inline blanks", "  SET \t k  v  \r\n", [][]string{{"SET", "k", "v"}}},
		{"inline double quotes", `SET "a key" "va\"l\\ue"` + "\r\n", [][]string{{"SET", "a key", `va"l\ue`}}},
		{"inline escapes", `ECHO "\x41\x7a\xff\n\r\t\b\a\q\xzz"` + "\r\n", [][]string{{"ECHO", "Az\xff\n\r\t\b\aqxzz"}}},
		{"inline single quotes", `ECHO 'it\'s "raw" \n'` + "\r\n", [][]string{{"ECHO", `it's "raw" \n`}}},
		{"inline empty quoted", `ECHO "" ''` + "\r\n", [][]string{{"ECHO", "", ""}}},
		{"inline quote inside argument", `ECHO a"b c"` + "\r\n", [][]string{{"ECHO", "ab c"}}},
		{"inline vertical tab inside argument", "ECHO a\vb\r\n", [][]string{{"ECHO", "a\vb"}}},
		{"inline CR inside line", "ECHO a\rb\r\n", [][]string{{"ECHO", "a", "b"}}},
		{"inline NUL ends line", "ECHO a\x00b c\r\nPING\r\n", [][]string{{"ECHO", "a"}, {"PING"}}},
		{"inline then multibulk", "PING\r\n*1\r\n$4\r\nPING\r\nPING\n", [][]string{{"PING"}, {"PING"}, {"PING"}}},
		{"inline starting with dollar", "$3\r\n", [][]string{{"$3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for how, rd := range readers(tt.in) {
				got, err := readAll(NewReader(rd, Limits{}))
				if err != io.EOF {
					t.Fatalf("%s: err %v, want io.EOF", how, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("%s: got %q, want %q", how, got, tt.want)
				}
			}
		})
	}
}

func TestReaderMalformed(t *testing.T) {
	long := strings.Repeat("a", DefaultMaxInline+1)
	tests := []struct {
		name   string
		in     string
		lim    Limits
		before int // commands returned before the error
		want   string
	}{
		{"non-numeric count", "*abc\r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"empty count", "*\r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"minus only", "*-\r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"plus sign", "*+1\r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"leading zero", "*01\r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"space in count", "*1 \r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"overflowing count", "*99999999999999999999\r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"more than 1M arguments", "*1048577\r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"more than MaxArgs", "*4\r\n", Limits{MaxArgs: 3}, 0, "Protocol error: invalid multibulk length"},
		{"count missing LF", "*1\rX$4\r\nPING\r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"count with LF only", "*1\n$4\r\nPING\r\n", Limits{}, 0, "Protocol error: invalid multibulk length"},
		{"negative bulk length", "*1\r\n$-1\r\n", Limits{}, 0, "Protocol error: invalid bulk length"},
		{"non-numeric bulk length", "*1\r\n$abc\r\n", Limits{}, 0, "Protocol error: invalid bulk length"},
		{"empty bulk length", "*1\r\n$\r\n", Limits{}, 0, "Protocol error: invalid bulk length"},
		{"bulk above proto-max-bulk-len", "*1\r\n$536870913\r\n", Limits{}, 0, "Protocol error: invalid bulk length"},
		{"bulk above MaxBulk", "*1\r\n$11\r\n", Limits{MaxBulk: 10}, 0, "Protocol error: invalid bulk length"},
		{"overflowing bulk length", "*1\r\n$9223372036854775808\r\n", Limits{}, 0, "Protocol error: invalid bulk length"},
		{"bulk length missing LF", "*1\r\n$4\rXPING\r\n", Limits{}, 0, "Protocol error: invalid bulk length"},
		{"bulk not followed by CRLF", "*1\r\n$3\r\nfooXX", Limits{}, 0, "Protocol error: invalid bulk length"},
		{"bulk shorter than declared", "*2\r\n$4\r\nfoo\r\n$3\r\nbar\r\n", Limits{}, 0, "Protocol error: invalid bulk length"},
		{"nested array", "*1\r\n*1\r\n$1\r\na\r\n", Limits{}, 0, "Protocol error: expected '$', got '*'"},
		{"integer argument", "*2\r\n$3\r\nGET\r\n:1\r\n", Limits{}, 0, "Protocol error: expected '$', got ':'"},
		{"garbage argument", "*1\r\nGARBAGE\r\n", Limits{}, 0, "Protocol error: expected '$', got 'G'"},
		{"binary garbage argument", "*1\r\n\x00\x01\r\n", Limits{}, 0, "Protocol error: expected '$', got '\x00'"},
		{"empty argument line", "*1\r\n\r\n", Limits{}, 0, "Protocol error: expected '$', got '\r'"},
		{"unterminated double quote", "SET k \"v\r\n", Limits{}, 0, "Protocol error: unbalanced quotes in request"},
		{"unterminated single quote", "SET k 'v\r\n", Limits{}, 0, "Protocol error: unbalanced quotes in request"},
		{"escaped closing quote", `SET k "v\"` + "\r\n", Limits{}, 0, "Protocol error: unbalanced quotes in request"},
		{"closing quote then byte", `SET "k"v x` + "\r\n", Limits{}, 0, "Protocol error: unbalanced quotes in request"},
		{"closing single quote then byte", "SET 'k'v\r\n", Limits{}, 0, "Protocol error: unbalanced quotes in request"},
		{"quote cut by NUL", "SET \"k\x00\"\r\n", Limits{}, 0, "Protocol error: unbalanced quotes in request"},
		{"too big inline request", long, Limits{}, 0, "Protocol error: too big inline request"},
		{"too big inline line", long + "\r\n", Limits{}, 0, "Protocol error: too big inline request"},
		{"too big inline, small limit", "PING PING\r\n", Limits{MaxInline: 8}, 0, "Protocol error: too big inline request"},
		{"too big mbulk count string", "*" + long, Limits{}, 0, "Protocol error: too big mbulk count string"},
		{"too big bulk count string", "*1\r\n$" + long, Limits{}, 0, "Protocol error: too big bulk count string"},
		{"too big bulk count string, small limit", "*1\r\n$123456789\r\n", Limits{MaxInline: 8}, 0, "Protocol error: too big bulk count string"},
		{"error after a pipeline", "PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n*1\r\n$4\r\nPING\r\n", Limits{}, 2, "Protocol error: invalid multibulk length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for how, rd := range readers(tt.in) {
				r := NewReader(rd, tt.lim)
				got, err := readAll(r)
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("%s: err %v (after %q), want a ProtocolError", how, err, got)
				}
				if err.Error() != tt.want || len(got) != tt.before {
					t.Fatalf("%s: %d commands then %q, want %d then %q", how, len(got), err, tt.before, tt.want)
				}
				if _, err2 := r.ReadCommand(); err2 != err {
					t.Fatalf("%s: the error is not final: %v", how, err2)
				}
				if _, _, err2 := r.TryReadCommand(); err2 != err {
					t.Fatalf("%s: TryReadCommand after the error: %v", how, err2)
				}
			}
		})
	}
}

func TestReaderUnauthenticated(t *testing.T) {
	for in, want := range map[string]error{
		"*11\r\n":              ErrUnauthMultibulkLength,
		"*1\r\n$16385\r\n":     ErrUnauthBulkLength,
		"*x\r\n":               ErrInvalidMultibulkLength,
		"*1\r\n$536870913\r\n": ErrInvalidBulkLength,
	} {
		r := NewReader(strings.NewReader(in), Limits{})
		r.SetUnauthenticated(true)
		if _, err := r.ReadCommand(); err != want {
			t.Errorf("%q: %v, want %v", in, err, want)
		}
	}
	in := "*10\r\n" + strings.Repeat("$1\r\nx\r\n", 9) + "$16384\r\n" + strings.Repeat("x", 16384) + "\r\n" + "*11\r\n"
	r := NewReader(strings.NewReader(in), Limits{})
	r.SetUnauthenticated(true)
	if args, err := r.ReadCommand(); err != nil || len(args) != 10 {
		t.Fatalf("at the unauthenticated limits: %d args, %v", len(args), err)
	}
	r.SetUnauthenticated(false)
	if _, err := r.ReadCommand(); err != io.ErrUnexpectedEOF {
		t.Fatalf("once authenticated: %v", err)
	}
}

func TestReaderSentinels(t *testing.T) {
	_, err := NewReader(strings.NewReader("*x\r\n"), Limits{}).ReadCommand()
	if !errors.Is(err, ErrInvalidMultibulkLength) {
		t.Fatalf("err %v, want ErrInvalidMultibulkLength", err)
	}
}

func TestReaderLimitsAtBoundary(t *testing.T) {
	line := strings.Repeat("a", DefaultMaxInline-1) + "\r\n" // MaxInline bytes before the LF
	got, err := readAll(NewReader(strings.NewReader(line), Limits{}))
	if err != io.EOF || len(got) != 1 || len(got[0][0]) != DefaultMaxInline-1 {
		t.Fatalf("inline of MaxInline bytes: %d commands, %v", len(got), err)
	}
	in := "*1\r\n$10\r\n0123456789\r\n"
	got, err = readAll(NewReader(strings.NewReader(in), Limits{MaxBulk: 10}))
	if err != io.EOF || len(got) != 1 {
		t.Fatalf("bulk of MaxBulk bytes: %q, %v", got, err)
	}
}

func TestReaderMillionArguments(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("*1048576\r\n")
	for i := 0; i < DefaultMaxArgs; i++ {
		b.WriteString("$1\r\nx\r\n")
	}
	r := NewReader(&b, Limits{})
	args, err := r.ReadCommand()
	if err != nil || len(args) != DefaultMaxArgs {
		t.Fatalf("%d args, %v", len(args), err)
	}
	if string(args[0]) != "x" || string(args[len(args)-1]) != "x" {
		t.Fatalf("args %q ... %q", args[0], args[len(args)-1])
	}
	if _, err := r.ReadCommand(); err != io.EOF {
		t.Fatalf("then %v, want io.EOF", err)
	}
}

func TestReaderEOF(t *testing.T) {
	for _, in := range []string{"PING", "*1\r\n", "*1\r\n$4\r\nPI", "*1\r\n$4\r\nPING\r", "*1"} {
		_, err := readAll(NewReader(strings.NewReader(in), Limits{}))
		if err != io.ErrUnexpectedEOF {
			t.Errorf("%q: %v, want io.ErrUnexpectedEOF", in, err)
		}
	}
	readErr := errors.New("boom")
	_, err := NewReader(iotest.ErrReader(readErr), Limits{}).ReadCommand()
	if err != readErr {
		t.Fatalf("read error: %v", err)
	}
	// Data and an error in one Read: the command first, then the error.
	r := NewReader(iotest.DataErrReader(strings.NewReader("PING\r\n")), Limits{})
	if args, err := r.ReadCommand(); err != nil || string(args[0]) != "PING" {
		t.Fatalf("%q %v", args, err)
	}
	if _, err := r.ReadCommand(); err != io.EOF {
		t.Fatalf("then %v, want io.EOF", err)
	}
}

// blockReader fails the test if read: TryReadCommand must not read.
type blockReader struct{ t *testing.T }

func (b blockReader) Read([]byte) (int, error) {
	b.t.Fatal("read past the buffered input")
	return 0, nil
}

func TestReaderTryReadCommandBatch(t *testing.T) {
	in := "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\nSET b 2\r\n*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$3\r\nGET"
	r := NewReader(io.MultiReader(strings.NewReader(in), blockReader{t}), Limits{})
	first, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	batch := [][][]byte{first}
	for {
		args, ok, err := r.TryReadCommand()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		batch = append(batch, args)
	}
	// Every command of the batch is intact once the batch is read.
	want := [][]string{{"SET", "a", "1"}, {"SET", "b", "2"}, {"SET", "c", "3"}}
	var got [][]string
	for _, args := range batch {
		got = append(got, strs(args))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batch %q, want %q", got, want)
	}
	if n := r.Buffered(); n != len("*2\r\n$3\r\nGET") {
		t.Fatalf("Buffered %d with a partial command", n)
	}
	// Appending to an argument must not clobber the next one.
	_ = append(batch[0][1], 'X')
	_ = append(batch[0], []byte("X"))
	if string(batch[0][2]) != "1" || string(batch[1][0]) != "SET" {
		t.Fatalf("append clobbered the buffer: %q %q", batch[0], batch[1])
	}
}

func TestReaderTryReadCommandEmpty(t *testing.T) {
	r := NewReader(strings.NewReader(""), Limits{})
	if _, ok, err := r.TryReadCommand(); ok || err != nil {
		t.Fatalf("ok %v err %v on an empty buffer", ok, err)
	}
	if r.Buffered() != 0 {
		t.Fatal("Buffered not 0")
	}
}

// growthReader delivers a declared-huge bulk slowly and checks that the
// buffer never holds much more than what was received.
type growthReader struct {
	t         *testing.T
	r         *Reader
	data      []byte
	delivered int
	maxCap    int
}

func (g *growthReader) Read(p []byte) (int, error) {
	if c := cap(g.r.buf); c > g.maxCap {
		g.maxCap = c
	}
	if limit := max(2*g.delivered, DefaultBufferSize); cap(g.r.buf) > limit {
		g.t.Fatalf("buffer of %d bytes after receiving %d", cap(g.r.buf), g.delivered)
	}
	if len(g.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1000)], g.data)
	g.data = g.data[n:]
	g.delivered += n
	return n, nil
}

func TestReaderGrowsAsBytesArrive(t *testing.T) {
	// A client declaring 512 MB and sending 3 bytes costs the first buffer.
	g := &growthReader{t: t, data: []byte("*1\r\n$536870912\r\nabc")}
	g.r = NewReader(g, Limits{})
	if _, err := g.r.ReadCommand(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err %v", err)
	}
	if g.maxCap > DefaultBufferSize {
		t.Fatalf("buffer grew to %d", g.maxCap)
	}

	// A 3 MB bulk arriving in 1000-byte reads grows the buffer gradually,
	// never beyond what it declared, and the idle Reader gives it back.
	const size = 3 << 20
	cmd := fmt.Sprintf("*2\r\n$3\r\nSET\r\n$%d\r\n%s\r\n", size, bytes.Repeat([]byte("v"), size))
	g = &growthReader{t: t, data: []byte(cmd + "PING\r\n")}
	g.r = NewReader(g, Limits{})
	args, err := g.r.ReadCommand()
	if err != nil || len(args) != 2 || len(args[1]) != size {
		t.Fatalf("%d args, %v", len(args), err)
	}
	if g.maxCap > len(cmd) {
		t.Fatalf("buffer of %d bytes for a command of %d", g.maxCap, len(cmd))
	}
	if args, err := g.r.ReadCommand(); err != nil || string(args[0]) != "PING" {
		t.Fatalf("%q %v", args, err)
	}
	if _, err := g.r.ReadCommand(); err != io.EOF {
		t.Fatal(err)
	}
	if cap(g.r.buf) != DefaultBufferSize {
		t.Fatalf("idle buffer of %d bytes", cap(g.r.buf))
	}
}

func TestReaderQueryBufferLimit(t *testing.T) {
	in := "*1\r\n$2000\r\n" + strings.Repeat("x", 2000) + "\r\n"
	lim := Limits{MaxBulk: 4096, MaxQueryBuffer: 1024}
	for how, rd := range map[string]io.Reader{"whole": strings.NewReader(in), "one byte": iotest.OneByteReader(strings.NewReader(in))} {
		r := NewReader(rd, lim)
		if _, err := r.ReadCommand(); err != ErrQueryBufferLimit {
			t.Fatalf("%s: err %v", how, err)
		}
		if cap(r.buf) > 1024 {
			t.Fatalf("%s: buffer of %d bytes", how, cap(r.buf))
		}
		if _, err := r.ReadCommand(); err != ErrQueryBufferLimit {
			t.Fatalf("%s: the error is not final: %v", how, err)
		}
	}
	// An incomplete inline line is bounded by MaxInline first.
	r := NewReader(strings.NewReader(strings.Repeat("x", 2000)), Limits{MaxInline: 100, MaxQueryBuffer: 1024})
	if _, err := r.ReadCommand(); err != ErrTooBigInline {
		t.Fatalf("err %v", err)
	}
}

func TestReaderReset(t *testing.T) {
	r := NewReader(strings.NewReader("*1\r\n$4\r\nPI"), Limits{})
	if _, err := r.ReadCommand(); err != io.ErrUnexpectedEOF {
		t.Fatal(err)
	}
	r.Reset(strings.NewReader("PING\r\n"))
	if args, err := r.ReadCommand(); err != nil || string(args[0]) != "PING" {
		t.Fatalf("%q %v", args, err)
	}
}

func TestParseInt(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1": 1, "-1": -1, "1048576": 1 << 20,
		"9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63,
	} {
		if got, ok := parseInt([]byte(in)); !ok || got != want {
			t.Errorf("parseInt(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-", "+1", "01", "-0", "00", " 1", "1 ", "1a", "9223372036854775808", "-9223372036854775809", "100000000000000000000"} {
		if got, ok := parseInt([]byte(in)); ok {
			t.Errorf("parseInt(%q) = %d, want invalid", in, got)
		}
	}
}
