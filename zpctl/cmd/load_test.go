package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{name: "missing file", args: []string{"load", "t", "/nonexistent/pairs"}, wantCode: ExitUsage},
		{name: "unknown table", args: []string{"load", "nosuch", "-"}, stdin: "a\t1\n", wantCode: ExitNotFound},
		{name: "bad batch", args: []string{"load", "t", "-", "--batch", "0"}, wantCode: ExitUsage},
	}
	cl := sharedCluster(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
				t.Fatalf("%d keys stored, want %d", got, tt.wantKeys)
			}
			if want := strings.ReplaceAll(tt.wantStdout, " into t\n", " into "+table+"\n"); tt.wantStdout != "" && r.stdout != want {
				t.Fatalf("stdout %q, want %q", r.stdout, tt.wantStdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Fatalf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}
