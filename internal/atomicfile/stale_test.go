//go:build unix

package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestTempTarget(t *testing.T) {
	for name, want := range map[string]string{
		".site.tar.123.relocate-tmp":     "site.tar",
		"/x/.a.b.c.99.relocate-tmp":      "a.b.c",
		".site.tar.123.relocate-new":     "",
		"site.tar.123.relocate-tmp":      "",
		"..123.relocate-tmp":             "",
		".site.tar.tmp-123":              "",
		".site.tar.123.relocate-tmp.old": "",
	} {
		if got := TempTarget(name); got != want {
			t.Errorf("TempTarget(%q) = %q, want %q", name, got, want)
		}
	}
}

// A temporary file whose writer is gone (here: its descriptor closed
// without Commit or Abort, as SIGKILL leaves it; the child-process test
// is cmd/relocate's TestKilledExportDebrisRemoved) is stale; a live one,
// or one taken with Resume, is not.
func TestStale(t *testing.T) {
	dir := t.TempDir()
	live, err := CreateLocked(filepath.Join(dir, "live.tar"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	dead, err := CreateLocked(filepath.Join(dir, "dead.tar"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	dead.File.Close()
	kept, err := CreateLocked(filepath.Join(dir, "kept.tar"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	kept.File.Close()
	other := filepath.Join(dir, ".unrelated.tmp-1")
	os.WriteFile(other, nil, 0o644)
	oldNew := filepath.Join(dir, ".x.tar.1.relocate-new") // killed between create and rename
	youngNew := filepath.Join(dir, ".y.tar.2.relocate-new")
	os.WriteFile(oldNew, nil, 0o644)
	os.WriteFile(youngNew, nil, 0o644)
	past := time.Now().Add(-2 * newGrace)
	os.Chtimes(oldNew, past, past)

	stale, err := Stale(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{dead.tmp, kept.tmp, oldNew}
	slices.Sort(want)
	slices.Sort(stale)
	if !slices.Equal(stale, want) {
		t.Fatalf("Stale = %v, want %v", stale, want)
	}

	// Resume takes one: from then on it is live.
	resumed, err := Resume(kept.tmp, filepath.Join(dir, "kept.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(kept.tmp, filepath.Join(dir, "kept.tar")); err == nil {
		t.Error("a temporary file was resumed twice")
	}
	removed, err := RemoveStale(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{dead.tmp, oldNew}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	for _, p := range []string{live.tmp, kept.tmp, other, youngNew} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := resumed.WriteString("more"); err != nil {
		t.Fatal(err)
	}
	if err := resumed.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "kept.tar")); string(b) != "more" {
		t.Errorf("resumed file holds %q", b)
	}

	// keep spares what the caller wants.
	again, _ := CreateLocked(filepath.Join(dir, "again.tar"), 0o644)
	again.File.Close()
	if removed, _ := RemoveStale(dir, func(p string) bool { return p == again.tmp }); len(removed) != 0 {
		t.Errorf("removed %v despite keep", removed)
	}
}

func TestLockedCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	f, err := CreateLocked(filepath.Join(dir, "a.tar"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("archive")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "a.tar")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("committed file: %v %v", fi, err)
	}
	g, _ := CreateLocked(filepath.Join(dir, "b.tar"), 0o644)
	g.Abort()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("left %v", ents)
	}
}
