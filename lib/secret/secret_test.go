package secret

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadFile: the secret without its white space, a warning for a file
// others may read, errors that never carry the secret.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s, open, err := ReadFile(write("ok", "  s3cret-token\n", 0o600))
	if err != nil || string(s) != "s3cret-token" || open {
		t.Fatalf("ReadFile = %q, open %t, %v", s, open, err)
	}
	if _, open, err := ReadFile(write("open", "s3cret-token\n", 0o644)); err != nil || !open {
		t.Fatalf("a world-readable file: open %t, %v", open, err)
	}
	if _, _, err := ReadFile(write("empty", " \n\t", 0o600)); !errors.Is(err, ErrEmpty) {
		t.Fatalf("an empty file: %v", err)
	}
	if _, _, err := ReadFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file read")
	}
	if _, _, err := ReadFile(dir); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a directory: %v", err)
	}
}

// TestToken: only the secret matches; an empty presentation never does;
// the zero Token has nothing to match.
func TestToken(t *testing.T) {
	tok := NewToken([]byte("s3cret"))
	for got, want := range map[string]bool{"s3cret": true, "s3cret ": false, "": false, "other": false} {
		if tok.Matches([]byte(got)) != want {
			t.Errorf("Matches(%q) = %t, want %t", got, !want, want)
		}
	}
	if !tok.Set() || NewToken(nil).Set() || NewToken(nil).Matches(nil) {
		t.Error("Set or the zero Token wrong")
	}
}
