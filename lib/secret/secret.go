// Package secret reads secrets from files: the one way zpmeta and zpctl
// take them, so that none is ever a command-line literal (visible in ps
// and shell history).
package secret

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// ErrEmpty is a secret file with nothing in it but white space.
var ErrEmpty = errors.New("secret file is empty")

// ReadFile returns the secret in path, without surrounding white space (a
// trailing newline from an editor or `echo`). It reports, with open
// false, a file that others than its owner may read, for the caller to
// warn about. The secret itself is in no error.
func ReadFile(path string) (s []byte, open bool, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("secret: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("secret: %s is not a regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, false, fmt.Errorf("%w: %s", ErrEmpty, path)
	}
	return b, fi.Mode().Perm()&0o077 != 0, nil
}

// Token checks presented tokens against a secret it keeps only the
// SHA-256 of. The zero Token (and a nil one) has no secret: Set reports
// false.
type Token struct {
	hash *[32]byte
}

// NewToken returns a Token for secret; an empty secret gives the zero
// Token.
func NewToken(secret []byte) Token {
	if len(secret) == 0 {
		return Token{}
	}
	h := sha256.Sum256(secret)
	return Token{hash: &h}
}

// Set reports whether t has a secret to check against.
func (t Token) Set() bool { return t.hash != nil }

// Matches reports whether got is the secret. Hashes of equal length are
// compared in constant time, so that neither the secret's bytes nor its
// length show in the timing.
func (t Token) Matches(got []byte) bool {
	if t.hash == nil || len(got) == 0 {
		return false
	}
	h := sha256.Sum256(got)
	return subtle.ConstantTimeCompare(h[:], t.hash[:]) == 1
}

// Load is ReadFile for a daemon's flag: "" gives no secret; a file others
// than its owner may read is logged as a warning, naming flag and file.
func Load(path, flag string, logger *slog.Logger) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	s, open, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if open {
		logger.Warn("a secret file can be read by others than its owner: chmod 600 it", "flag", flag, "file", path)
	}
	return s, nil
}
