package glob

import "testing"

// TestMatch: cases from Redis's own tests (tests/unit/keyspace.tcl,
// util.c's stringmatchlen) and the edge cases of its syntax.
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"*", "", false}, // as Redis: the loop needs a byte (keys are never empty)
		{"*", "abc", true},
		{"", "", true},
		{"", "a", false},
		{"a*", "abc", true},
		{"a*", "bac", false},
		{"*c", "abc", true},
		{"a*c", "ac", true},
		{"a**c", "abbc", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"?", "", false},
		{"h[ae]llo", "hello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hallo", true}, // a reversed range is swapped
		{"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{`[\]]`, "]", true},
		{"[abc", "a", true}, // unclosed: the rest is the set
		{"[abc", "d", false},
		{"foo*", "foo", true},
		{"key:*:x", "key:1:x", true},
		{"key:*:x", "key:1:y", false},
		{`a\`, "a", false},
		{`a\`, `a\`, true},
		{"*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	} {
		if got := Match([]byte(tc.pat), []byte(tc.s)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}
