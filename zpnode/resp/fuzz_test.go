package resp

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"testing"
	"testing/iotest"
)

// fuzzLimits are small so that the fuzzer reaches every limit.
var fuzzLimits = Limits{MaxInline: 256, MaxArgs: 64, MaxBulk: 1024, MaxQueryBuffer: 4096, BufferSize: 16}

// FuzzReader feeds arbitrary input to a Reader, at once and a byte at a
// time: it must not panic, must give the same commands and error both
// ways, and must respect the limits. The input, split on spaces into
// arguments, must also round-trip through a multibulk encoding and through
// an inline one quoted as redis-cli quotes.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\nbc\r\n*1\r\n$4\r\nPING\r\n",
		"PING\r\nSET k \"v\\x00\\n\" 'it\\'s'\r\n",
		"*0\r\n*-1\r\n\r\n*1\r\n$0\r\n\r\n",
		"*1\r\n*1\r\n$1\r\na\r\n",
		"*1\r\n$-1\r\n",
		"*99999999999999999999\r\n",
		"*1\r\n$3\r\nfooXX",
		"SET \"unbalanced\r\n",
		"a\"b c\" \x00rest\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, errWhole := fuzzRead(t, bytes.NewReader(data))
		bytewise, errBytewise := fuzzRead(t, iotest.OneByteReader(bytes.NewReader(data)))
		if !reflect.DeepEqual(whole, bytewise) || errString(errWhole) != errString(errBytewise) {
			t.Fatalf("whole: %q, %v\nbyte at a time: %q, %v", whole, errWhole, bytewise, errBytewise)
		}

		args := bytes.Split(data, []byte(" "))
		if len(args) > fuzzLimits.MaxArgs {
			args = args[:fuzzLimits.MaxArgs]
		}
		for _, a := range args {
			if len(a) > fuzzLimits.MaxBulk {
				return
			}
		}
		var enc []byte
		enc = appendMultibulk(enc, args)
		if len(enc) > fuzzLimits.MaxQueryBuffer {
			return
		}
		enc = appendInline(enc, args)
		got, err := fuzzRead(t, bytes.NewReader(enc))
		want := [][]string{strs(args)}
		if len(enc)-len(appendMultibulk(nil, args)) <= fuzzLimits.MaxInline+1 {
			want = append(want, strs(args))
			if err != io.EOF {
				t.Fatalf("encoded %q: %v", enc, err)
			}
		}
		if !reflect.DeepEqual(got[:min(len(got), len(want))], want) {
			t.Fatalf("encoded %q\ngot  %q\nwant %q", enc, got, want)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fuzzRead reads every command with fuzzLimits, checking each against them.
func fuzzRead(t *testing.T, rd io.Reader) ([][]string, error) {
	r := NewReader(rd, fuzzLimits)
	var cmds [][]string
	for {
		args, err := r.ReadCommand()
		if err != nil {
			var pe *ProtocolError
			if err != io.EOF && err != io.ErrUnexpectedEOF && err != ErrQueryBufferLimit && !errors.As(err, &pe) {
				t.Fatalf("unexpected error %v", err)
			}
			if cap(r.buf) > fuzzLimits.MaxQueryBuffer {
				t.Fatalf("buffer of %d bytes", cap(r.buf))
			}
			return cmds, err
		}
		if len(args) == 0 || len(args) > max(fuzzLimits.MaxArgs, fuzzLimits.MaxInline/2+1) {
			t.Fatalf("%d arguments", len(args))
		}
		for _, a := range args {
			if len(a) > fuzzLimits.MaxBulk {
				t.Fatalf("argument of %d bytes", len(a))
			}
		}
		cmds = append(cmds, strs(args))
	}
}

func appendMultibulk(b []byte, args [][]byte) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

// appendInline quotes each argument as Redis's sdscatrepr does.
func appendInline(b []byte, args [][]byte) []byte {
	for i, a := range args {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, '"')
		for _, c := range a {
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			case '\a':
				b = append(b, `\a`...)
			case '\b':
				b = append(b, `\b`...)
			default:
				if c >= 0x20 && c < 0x7f {
					b = append(b, c)
				} else {
					b = append(b, `\x`...)
					b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
				}
			}
		}
		b = append(b, '"')
	}
	return append(b, "\r\n"...)
}
