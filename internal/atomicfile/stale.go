package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Temporary files that CreateLocked makes are named
//
//	.<base>.<random>.relocate-tmp
//
// in the directory of the final path <base>, and their writer holds an
// exclusive flock(2) on them from before they get that name until they are
// renamed into place or removed. The kernel drops the lock when the writer
// dies, SIGKILL included, so a temporary file whose lock can be taken is
// debris: Stale lists such files, RemoveStale removes them. A file is
// first created as .<base>.<random>.relocate-new and locked, then renamed
// to its .relocate-tmp name, so no cleaner ever sees a live one unlocked;
// a .relocate-new file is debris once unlocked and older than newGrace.
//
// To reuse a stale temporary file instead (a resumed export), take it with
// Resume: it is locked before anything else, and from then on RemoveStale
// leaves it alone.
const (
	TempSuffix = ".relocate-tmp"
	newSuffix  = ".relocate-new"
)

// newGrace is how old an unlocked .relocate-new file must be to be debris:
// a live writer renames it within microseconds of creating it.
const newGrace = time.Minute

// CreateLocked is Create for a file whose temporary copy a later run can
// recognise as debris if this process is killed (see TempSuffix). Where
// locks are not available (not unix) it is Create with the same naming, and
// nothing is ever found stale.
func CreateLocked(path string, perm os.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*"+newSuffix)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*File, error) {
		os.Remove(f.Name())
		f.Close()
		return nil, err
	}
	if err := lockFile(f); err != nil {
		return fail(fmt.Errorf("locking %s: %w", f.Name(), err))
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	tmp := strings.TrimSuffix(f.Name(), newSuffix) + TempSuffix
	if err := os.Rename(f.Name(), tmp); err != nil {
		return fail(err)
	}
	return &File{File: f, path: path, tmp: tmp, locked: true}, nil
}

// TempTarget is the base name of the final file a temporary file of
// CreateLocked is for ("site.tar" for ".site.tar.123.relocate-tmp"), or ""
// if name is not one.
func TempTarget(name string) string {
	name = filepath.Base(name)
	rest, ok := strings.CutPrefix(name, ".")
	if !ok {
		return ""
	}
	if rest, ok = strings.CutSuffix(rest, TempSuffix); !ok {
		return ""
	}
	i := strings.LastIndex(rest, ".")
	if i <= 0 {
		return ""
	}
	return rest[:i]
}

// Stale lists the temporary files of CreateLocked in dir that no live
// process holds: debris of writers that were killed. It removes nothing.
func Stale(dir string) ([]string, error) {
	var out []string
	err := scan(dir, func(path string) error {
		out = append(out, path)
		return nil
	})
	return out, err
}

// RemoveStale removes the stale temporary files in dir (see Stale) for
// which keep (if not nil) is false, each while holding its lock, so that a
// file another process has just taken (Resume) is never removed. It returns
// the paths removed.
func RemoveStale(dir string, keep func(path string) bool) ([]string, error) {
	var out []string
	err := scan(dir, func(path string) error {
		if keep != nil && keep(path) {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		out = append(out, path)
		return nil
	})
	return out, err
}

// scan calls fn for each stale temporary file of dir while holding its
// lock.
func scan(dir string, fn func(path string) error) error {
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		n := e.Name()
		isNew := strings.HasPrefix(n, ".") && strings.HasSuffix(n, newSuffix)
		if !e.Type().IsRegular() || !(TempTarget(n) != "" || isNew) {
			continue
		}
		path := filepath.Join(dir, n)
		if isNew {
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < newGrace {
				continue
			}
		}
		f, stale, err := tryLock(path, os.O_RDONLY)
		if err != nil || !stale {
			continue // gone meanwhile, unreadable, or live
		}
		if err := fn(path); err != nil {
			errs = append(errs, err)
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// tryLock opens path and takes its lock if no one holds it. It reports
// stale only when the lock was taken and path still names the file locked
// (a writer may have renamed it into place meanwhile).
func tryLock(path string, flag int) (*os.File, bool, error) {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, false, err
	}
	ok, err := tryLockFile(f)
	if err != nil || !ok {
		f.Close()
		return nil, false, err
	}
	fi, err1 := f.Stat()
	pi, err2 := os.Lstat(path)
	if err1 != nil || err2 != nil || !os.SameFile(fi, pi) {
		f.Close()
		return nil, false, nil
	}
	return f, true, nil
}

// Resume takes a stale temporary file of CreateLocked (see Stale) to go on
// writing it: it is locked, so no cleaner removes it, and Commit renames it
// to path. It fails if another process holds it.
func Resume(tmp, path string) (*File, error) {
	f, stale, err := tryLock(tmp, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	if !stale {
		return nil, fmt.Errorf("%s is in use by another process", tmp)
	}
	return &File{File: f, path: path, tmp: tmp, locked: true}, nil
}
