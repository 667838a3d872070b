package dbsync

import (
	"errors"
	"io/fs"
	"os"
)

// exists reports whether p exists; errors other than "does not exist" are
// returned, so that a permission problem is not mistaken for absence.
func exists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}
