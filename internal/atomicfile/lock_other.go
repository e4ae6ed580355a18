//go:build !unix

package atomicfile

import "os"

// Without flock(2) a live temporary file cannot be told from debris:
// nothing is ever reported stale.
func lockFile(*os.File) error { return nil }

func tryLockFile(*os.File) (bool, error) { return false, nil }
