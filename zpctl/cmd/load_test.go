package cmd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
	nodeserver "github.com/zeppelin-kv/zeppelin/zpnode/server"
)

func loadFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pairs.tsv")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pairs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "key%02d\tvalue %d\n", i, i)
	}
	return b.String()
}

// loadKeys are the keys the cases below can load.
func loadKeys() []string {
	keys := []string{"a", "b"}
	for i := range 500 {
		keys = append(keys, fmt.Sprintf("key%02d", i))
	}
	return keys
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		file       string // written to a temp file named by {file}
		stdin      string
		wantCode   int
		wantKeys   int
		wantStdout string
		wantStderr []string
		huge       bool // moves tens of MiB: see raceEnabled
	}{
		{name: "file", args: []string{"load", "t", "{file}", "--batch", "10", "--parallel", "1"}, file: pairs(25), wantKeys: 25,
			wantStdout: "loaded 25 keys into t\n",
			wantStderr: []string{"load: 10/25 keys (40%)\nload: 20/25 keys (80%)\nload: done, 25/25 keys (100%) in "}},
		{name: "parallel batches", args: []string{"load", "t", "{file}", "--batch", "7"}, file: pairs(500), wantKeys: 500,
			wantStdout: "loaded 500 keys into t\n"},
		{name: "no final newline", args: []string{"load", "t", "{file}"}, file: "a\t1\nb\t2", wantKeys: 2, wantStdout: "loaded 2 keys into t\n"},
		{name: "stdin", args: []string{"load", "t", "-", "--batch", "3", "--parallel", "1"}, stdin: pairs(7), wantKeys: 7,
			wantStderr: []string{"load: done, 7 keys in "}},
		{name: "separator", args: []string{"load", "t", "-", "--sep", "="}, stdin: "a=1=2\nb=\n", wantKeys: 2},
		{name: "malformed line", args: []string{"load", "t", "{file}", "--batch", "100"}, file: pairs(6) + "oops\n" + pairs(3),
			wantCode: ExitInvalid, wantKeys: 6, wantStderr: []string{"line 7: want KEY<TAB>VALUE"}},
		{name: "empty key", args: []string{"load", "t", "-"}, stdin: "\tv\n", wantCode: ExitInvalid, wantStderr: []string{"line 1"}},
		// Lines of any length are read; one too long for any node is
		// refused by its line number, what came before it written.
		{name: "value over any node's limit", args: []string{"load", "t", "-"}, stdin: "a\t1\nkey01\t" + strings.Repeat("x", keyspace.MaxValueSize+1) + "\nb\t2\n",
			wantCode: ExitInvalid, wantKeys: 1, wantStderr: []string{"VALUE_TOO_LARGE: line 2: value of 50331649 bytes, over 48 MiB"}, huge: true},
		{name: "value over the node's limit", args: []string{"load", "t", "-"}, stdin: "a\t1\nkey01\t" + strings.Repeat("x", nodeserver.DefaultMaxValueSize+1) + "\nb\t2\n",
			wantCode: ExitInvalid, wantKeys: 2, wantStderr: []string{"line 2: ", "VALUE_TOO_LARGE"}, huge: true},
		{name: "key over the limit", args: []string{"load", "t", "-"}, stdin: "a\t1\n" + strings.Repeat("k", keyspace.MaxKeySize+1) + "\tv\n",
			wantCode: ExitInvalid, wantKeys: 1, wantStderr: []string{"KEY_TOO_LARGE: line 2: key of 65537 bytes"}},
		{name: "line without a separator, too long", args: []string{"load", "t", "-"}, stdin: strings.Repeat("k", keyspace.MaxKeySize+keyspace.MaxValueSize+2) + "\n",
			wantCode: ExitInvalid, wantStderr: []string{"KEY_TOO_LARGE: line 1: "}, huge: true},
		{name: "CRLF", args: []string{"load", "t", "-"}, stdin: "a\t1\r\nb\t2\r", wantKeys: 2},
		{name: "missing file", args: []string{"load", "t", "/nonexistent/pairs"}, wantCode: ExitUsage},
		{name: "unknown table", args: []string{"load", "nosuch", "-"}, stdin: "a\t1\n", wantCode: ExitNotFound},
		{name: "bad batch", args: []string{"load", "t", "-", "--batch", "0"}, wantCode: ExitUsage},
	}
	cl := sharedCluster(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.huge && raceEnabled {
				t.Skip("moves tens of MiB; see raceEnabled")
			}
			table := addTable(t, cl, 4, 1).Name
			args := append([]string{"--meta", cl.MetaAddrs()[0]}, tt.args...)
			for i, a := range args {
				if a == "t" {
					args[i] = table
				}
			}
			if tt.file != "" {
				p := loadFile(t, tt.file)
				for i, a := range args {
					if a == "{file}" {
						args[i] = p
					}
				}
			}
			r := run(t, invocation{args: args, stdin: tt.stdin})
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if got := stored(t, cl, table, loadKeys()); got != tt.wantKeys {
				t.Fatalf("%d keys stored, want %d\nstderr: %.2000s", got, tt.wantKeys, r.stderr)
			}
			if want := strings.ReplaceAll(tt.wantStdout, " into t\n", " into "+table+"\n"); tt.wantStdout != "" && r.stdout != want {
				t.Fatalf("stdout %q, want %q", r.stdout, tt.wantStdout)
			}
			if strings.Contains(r.stderr, "client: ") {
				t.Fatalf("stderr has the error's chain, which is for -v:\n%s", r.stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Fatalf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

func TestLineReader(t *testing.T) {
	type line struct {
		text string
		n    int
	}
	tests := []struct {
		name string
		in   string
		want []line
	}{
		{"lines", "a\nbb\n\nccc", []line{{"a", 1}, {"bb", 2}, {"", 0}, {"ccc", 3}}},
		{"CRLF", "a\r\nbb\r", []line{{"a", 1}, {"bb", 2}}},
		{"at max", "abcde\n", []line{{"abcde", 5}}},
		{"over max, cut and counted", "abcdefghijklmnopqrstuvwxyz\nx\n", []line{{"abcde", 26}, {"x", 1}}},
		{"one over max", "abcdef", []line{{"abcde", 6}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A buffer smaller than the lines: they come in fragments.
			lr := lineReader{r: bufio.NewReaderSize(strings.NewReader(tt.in), 16), max: 5}
			var got []line
			for {
				l, n, err := lr.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, line{string(l), n})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("lines %+v, want %+v", got, tt.want)
			}
		})
	}
}
