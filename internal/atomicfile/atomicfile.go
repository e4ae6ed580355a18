// Package atomicfile writes a file so that it appears at its final path only
// when complete: content goes to a temporary file beside it, which is synced
// and renamed into place, and the directory is synced so the rename survives
// a crash.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// File is a file being written; call Commit to publish it or Abort to drop it.
type File struct {
	*os.File
	path string
	tmp  string // the temporary file's name (it may differ from File.Name())
	done bool
	// locked: the file is held under a lock that marks it live (lock.go);
	// it is renamed and removed before it is closed, so that the lock
	// covers it to the end.
	locked bool
}

// Create opens a temporary file in path's directory.
func Create(path string, perm os.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{File: f, path: path, tmp: f.Name()}, nil
}

// Commit syncs the content, renames it to the final path and syncs the directory.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("%s: already closed", f.path)
	}
	f.done = true
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.tmp)
		return err
	}
	if f.locked {
		// Renamed while still locked: a cleaner never sees it unlocked
		// under its temporary name.
		if err := os.Rename(f.tmp, f.path); err != nil {
			os.Remove(f.tmp)
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return SyncDir(filepath.Dir(f.path))
	}
	if err := f.Close(); err != nil {
		os.Remove(f.tmp)
		return err
	}
	if err := os.Rename(f.tmp, f.path); err != nil {
		os.Remove(f.tmp)
		return err
	}
	return SyncDir(filepath.Dir(f.path))
}

// Abort removes the temporary file; it is a no-op after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	os.Remove(f.tmp) // before Close, so that a locked file is removed under its lock
	f.Close()
}

// SyncDir makes a rename in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}
