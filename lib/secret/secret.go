// Package secret reads secrets from files: the one way zpmeta and zpctl
// take them, so that none is ever a command-line literal (visible in ps
// and shell history).
package secret

import (
	"bytes"
	"errors"
	"fmt"
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
