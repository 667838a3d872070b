package cmd

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// Keys round-trip through JSON by the rule of values: text as is, anything
// else base64 with key_encoding "base64".
func TestKeysRoundTripInJSON(t *testing.T) {
	cl := sharedCluster(t)
	tbl := addTable(t, cl, 2, 1).Name
	bin := "{t}bin\x01\xff"
	if r := zpctl(t, cl, "set", tbl, bin, "v"); r.code != ExitOK {
		t.Fatalf("set: exit %d: %s", r.code, r.stderr)
	}
	if r := zpctl(t, cl, "set", tbl, "{t}text", "7"); r.code != ExitOK {
		t.Fatalf("set: exit %d: %s", r.code, r.stderr)
	}
	// Where each command puts its keys.
	top := func(doc map[string]any) []map[string]any { return []map[string]any{doc} }
	results := func(doc map[string]any) []map[string]any {
		var out []map[string]any
		for _, r := range doc["results"].([]any) {
			out = append(out, r.(map[string]any))
		}
		return out
	}
	tests := []struct {
		name  string
		args  []string
		items func(map[string]any) []map[string]any
		want  []string
	}{
		{"get", []string{"get", tbl, bin}, top, []string{bin}},
		{"set", []string{"set", tbl, bin, "v"}, top, []string{bin}},
		{"locate", []string{"locate", tbl, bin}, top, []string{bin}},
		{"incr", []string{"incr", tbl, "{t}text"}, top, []string{"{t}text"}},
		{"mget", []string{"mget", tbl, bin, "{t}text"}, results, []string{bin, "{t}text"}},
		{"scan", []string{"scan", tbl, "--tag", "t"}, results, []string{bin, "{t}text"}},
		{"scan keys only", []string{"scan", tbl, "--tag", "t", "--keys-only"}, results, []string{bin, "{t}text"}},
		{"del", []string{"del", tbl, bin}, top, []string{bin}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := zpctl(t, cl, append([]string{"-o", "json"}, tt.args...)...)
			if r.code != ExitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
				t.Fatalf("%v\n%s", err, r.stdout)
			}
			items := tt.items(doc)
			if len(items) != len(tt.want) {
				t.Fatalf("%d items, want %d:\n%s", len(items), len(tt.want), r.stdout)
			}
			for i, it := range items {
				k, _ := it["key"].(string)
				enc, _ := it["key_encoding"].(string)
				got, err := output.Key{Key: k, KeyEncoding: enc}.Decode()
				if err != nil || !bytes.Equal(got, []byte(tt.want[i])) {
					t.Fatalf("item %d: key %q (%s) decodes to %q, %v; want %q\n%s", i, k, enc, got, err, tt.want[i], r.stdout)
				}
			}
		})
	}
}
