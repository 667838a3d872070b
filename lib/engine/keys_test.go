package engine

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestDataKey(t *testing.T) {
	tests := []struct {
		key  string
		want string
	}{
		{"foo", "d\x00foo"},
		{"{user1000}.following", "d\x08user1000{user1000}.following"},
		{"a{}b", "d\x00a{}b"},        // empty tag: no hashtag
		{"{a}{b}", "d\x01a{a}{b}"},   // first {...} only
		{"x{ab", "d\x00x{ab"},        // unclosed
		{"}{tag}", "d\x03tag}{tag}"}, // '}' before '{' does not count
		{"{{a}}", "d\x02{a{{a}}"},    // tag runs from the first '{' to the next '}'
		{string(make([]byte, 3)), "d\x00\x00\x00\x00"},
	}
	for _, tt := range tests {
		got := dataKey([]byte(tt.key))
		if string(got) != tt.want {
			t.Errorf("dataKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
		user, err := userKeyOf(got)
		if err != nil || string(user) != tt.key {
			t.Errorf("userKeyOf(%q) = %q, %v; want %q", got, user, err, tt.key)
		}
	}

	// A tag's prefix never matches a longer tag that starts the same way.
	ab, abc := tagPrefix([]byte("ab")), dataKey([]byte("{abc}x"))
	if bytes.HasPrefix(abc, ab) {
		t.Errorf("key %q has the prefix of tag ab %q", abc, ab)
	}
	// A 200-byte tag needs a two-byte length.
	long := bytes.Repeat([]byte("t"), 200)
	key := append(append([]byte("{"), long...), "}k"...)
	if dk := dataKey(key); !bytes.HasPrefix(dk, tagPrefix(long)) || len(tagPrefix(long)) != 1+2+200 {
		t.Errorf("long tag prefix wrong: %q", dk[:5])
	}

	for _, bad := range [][]byte{nil, []byte("m/applied_lsn"), []byte("d\x05ab")} {
		if _, err := userKeyOf(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("userKeyOf(%q) error = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want string }{
		{"d\x02ab", "d\x02ac"},
		{"d\x01\xff", "d\x02"},
		{"a\xff\xff", "b"},
		{"\xff\xff", ""},
	}
	for _, tt := range tests {
		if got := prefixEnd([]byte(tt.in)); string(got) != tt.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValueEncoding(t *testing.T) {
	tests := []struct {
		user []byte
		exp  int64
	}{
		{nil, 0},
		{[]byte("hello"), 0},
		{[]byte("x"), 1_700_000_000_000},
		{bytes.Repeat([]byte{0xff}, 1000), 1},
	}
	for _, tt := range tests {
		b := encodeValue(tt.user, tt.exp)
		if b[0] != valueFormat || len(b) != valueHeaderSize+len(tt.user) {
			t.Fatalf("encodeValue(%q, %d) = %q", tt.user, tt.exp, b)
		}
		user, exp, err := decodeValue(b)
		if err != nil || !bytes.Equal(user, tt.user) || exp != tt.exp {
			t.Errorf("decodeValue(encodeValue(%q, %d)) = %q, %d, %v", tt.user, tt.exp, user, exp, err)
		}
	}
	for _, bad := range [][]byte{nil, {1, 0, 0}, {2, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := decodeValue(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeValue(%q) error = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestExpired(t *testing.T) {
	tests := []struct {
		exp, now int64
		want     bool
	}{
		{0, 1 << 62, false},
		{1000, 999, false},
		{1000, 1000, true},
		{1000, 1001, true},
	}
	for _, tt := range tests {
		if got := expired(tt.exp, tt.now); got != tt.want {
			t.Errorf("expired(%d, %d) = %v, want %v", tt.exp, tt.now, got, tt.want)
		}
	}
}

func TestDataKeyLen(t *testing.T) {
	for _, k := range []string{"a", "{tag}x", "x{" + strings.Repeat("t", 200) + "}y", "{}", strings.Repeat("k", 1000)} {
		if got, want := dataKeyLen([]byte(k)), len(dataKey([]byte(k))); got != want {
			t.Errorf("dataKeyLen(%.20q) = %d, want %d", k, got, want)
		}
	}
}
