// Package dirlock takes exclusive locks on directories, so that two
// processes (or two users in one process) never write the same data.
package dirlock

import "errors"

// ErrLocked is returned by Lock when someone else holds the directory.
var ErrLocked = errors.New("directory in use")

// FileName is the file in a locked directory that carries the lock.
const FileName = "LOCK"
