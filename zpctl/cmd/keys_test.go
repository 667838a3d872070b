package cmd

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTTLAndExists(t *testing.T) {
	cl := sharedCluster(t)
	tbl := addTable(t, cl, 2, 1).Name
	c := newClient(t, cl)
	if err := c.Set(testCtx(t), tbl, []byte("expiring"), []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(testCtx(t), tbl, []byte("forever"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // a regexp of the whole of stdout
		wantStderr string // substring; "" means none at all
	}{
		{"ttl", []string{"ttl", tbl, "expiring"}, ExitOK, `^59m5\d\.\d+s\n$`, ""},
		{"ttl json", []string{"-o", "json", "ttl", tbl, "expiring"}, ExitOK, `"key_encoding": "utf-8",\n  "ttl_ms": 35\d{5}\n`, ""},
		{"ttl of a key without expiry", []string{"ttl", tbl, "forever"}, ExitOK, `^none\n$`, ""},
		{"ttl json without expiry", []string{"-o", "json", "ttl", tbl, "forever"}, ExitOK, `"ttl_ms": -1\n`, ""},
		{"ttl missing", []string{"ttl", tbl, "nobody"}, ExitNotFound, `^$`, "NOT_FOUND"},
		{"ttl unknown table", []string{"ttl", "nosuch", "k"}, ExitNotFound, `^$`, "TABLE_NOT_FOUND"},
		{"exists", []string{"exists", tbl, "forever"}, ExitOK, `^1\n$`, ""},
		{"exists json", []string{"-o", "json", "exists", tbl, "forever"}, ExitOK, `"exists": true\n`, ""},
		{"exists missing: the answer, exit 3, nothing on stderr", []string{"exists", tbl, "nobody"}, ExitNotFound, `^0\n$`, ""},
		{"exists missing json", []string{"-o", "json", "exists", tbl, "nobody"}, ExitNotFound, `"exists": false\n`, ""},
		{"exists unknown table", []string{"exists", "nosuch", "k"}, ExitNotFound, `^$`, "TABLE_NOT_FOUND"},
		{"exists two keys", []string{"exists", tbl, "a", "b"}, ExitUsage, `^$`, "accepts 2 arg(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := zpctl(t, cl, tt.args...)
			if r.code != tt.wantCode || !regexp.MustCompile(tt.wantStdout).MatchString(r.stdout) {
				t.Fatalf("exit %d, want %d; stdout %q, want /%s/\nstderr: %s", r.code, tt.wantCode, r.stdout, tt.wantStdout, r.stderr)
			}
			if tt.wantStderr == "" && r.stderr != "" || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Fatalf("stderr %q, want %q", r.stderr, tt.wantStderr)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	cl := sharedCluster(t)
	tbl := addTable(t, cl, 4, 1).Name
	c := newClient(t, cl)
	var all, users, tagged []string
	for i := range 30 {
		users = append(users, fmt.Sprintf("user:%02d", i))
	}
	for i := range 5 {
		tagged = append(tagged, fmt.Sprintf("{t1}.%d", i))
	}
	all = append(append(append(all, users...), tagged...), "other:1", "other:2", "bin\x01\xff")
	for _, k := range all {
		if err := c.Set(testCtx(t), tbl, []byte(k), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	// keys runs zpctl keys with args and returns the keys listed, decoded,
	// and the cursor.
	keys := func(t *testing.T, args ...string) ([]string, string) {
		t.Helper()
		r := zpctl(t, cl, append([]string{"-o", "json", "keys", tbl}, args...)...)
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var doc keysJSON
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		var out []string
		for _, k := range doc.Keys {
			b, err := k.Decode()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
		if doc.Count != len(out) {
			t.Fatalf("count %d, %d keys", doc.Count, len(out))
		}
		return out, doc.Cursor
	}
	sorted := func(s []string) []string { return slices.Sorted(slices.Values(s)) }

	t.Run("whole table", func(t *testing.T) {
		got, cursor := keys(t)
		if !slices.Equal(sorted(got), sorted(all)) || cursor != "0" {
			t.Fatalf("keys %q, cursor %q; want %q, 0", got, cursor, sorted(all))
		}
	})
	t.Run("pattern", func(t *testing.T) {
		if got, _ := keys(t, "user:*"); !slices.Equal(sorted(got), users) {
			t.Fatalf("keys %q, want %q", got, users)
		}
	})
	t.Run("tag, in key order", func(t *testing.T) {
		if got, cursor := keys(t, "--tag", "t1"); !slices.Equal(got, tagged) || cursor != "0" {
			t.Fatalf("keys %q, cursor %q; want %q", got, cursor, tagged)
		}
	})
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"in steps", []string{"--limit", "4", "--count", "3"}, all},
		{"in steps with a pattern", []string{"user:1*", "--limit", "3", "--count", "2"}, users[10:20]},
		{"in steps of a tag", []string{"--tag", "t1", "--limit", "2", "--count", "1"}, tagged},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			cursor := "0"
			for runs := 0; ; runs++ {
				if runs > len(all) {
					t.Fatalf("no end after %d runs: %q", runs, got)
				}
				page, next := keys(t, append(tt.args, "--cursor", cursor)...)
				got = append(got, page...)
				if next == "0" {
					break
				}
				cursor = next
			}
			if !slices.Equal(sorted(got), sorted(tt.want)) {
				t.Fatalf("keys %q, want each of %q once", got, tt.want)
			}
		})
	}
	t.Run("text", func(t *testing.T) {
		r := zpctl(t, cl, "keys", tbl, "--tag", "t1", "--limit", "2")
		if r.code != ExitOK || r.stdout != "{t1}.0\n{t1}.1\n" || !strings.HasPrefix(r.stderr, "more keys: continue with --cursor 0:") {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
		if r := zpctl(t, cl, "keys", tbl, "bin*"); r.stdout != `"bin\x01\xff"`+"\n" || r.stderr != "" {
			t.Fatalf("binary key: stdout %q, stderr %q", r.stdout, r.stderr)
		}
	})
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"unknown table", []string{"keys", "nosuch"}, ExitNotFound},
		{"unknown table, tag", []string{"keys", "nosuch", "--tag", "x"}, ExitNotFound},
		{"bad cursor", []string{"keys", tbl, "--cursor", "x:y"}, ExitUsage},
		{"whole-table cursor with a tag", []string{"keys", tbl, "--tag", "t1", "--cursor", "2"}, ExitUsage},
		{"count over the most", []string{"keys", tbl, "--count", "1001"}, ExitUsage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r := zpctl(t, cl, tt.args...); r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s", r.code, tt.wantCode, r.stderr)
			}
		})
	}
}
