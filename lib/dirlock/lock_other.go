//go:build !unix

package dirlock

// Lock is a no-op where flock is unavailable.
type Lock struct{}

// Acquire takes no lock where flock is unavailable.
func Acquire(dir string) (*Lock, error) { return &Lock{}, nil }

// Release releases nothing.
func (l *Lock) Release() error { return nil }
