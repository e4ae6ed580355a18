package relocate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relocate-dev/relocate/internal/atomicfile"
)

func TestPrepareOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "site.tar")
	dead, err := atomicfile.CreateLocked(out, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	deadName := dead.Name()
	dead.File.Close() // its writer is gone, as after SIGKILL

	const size = 100 << 20
	needed := uint64(size + size/100 + 16<<20)
	o := ExportOptions{Output: out, FreeSpace: func(string) (uint64, error) { return needed - 1, nil }}
	removed, _, err := prepareOutput(o, size, nil)
	var se *SpaceError
	if !errors.As(err, &se) || se.Needed != needed || se.Free != needed-1 {
		t.Fatalf("err %v", err)
	}
	for _, w := range []string{"needs 122683392 bytes", "122683391 bytes", "are free", dir} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
	if len(removed) != 1 {
		t.Errorf("removed %v, want the dead temporary file", removed)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.Base(deadName))); err == nil {
		t.Error("the dead temporary file is still there")
	}
	o.FreeSpace = func(string) (uint64, error) { return needed, nil }
	if _, _, err := prepareOutput(o, size, nil); err != nil {
		t.Error(err)
	}
	o.FreeSpace = func(string) (uint64, error) { return 0, errSpaceUnknown }
	if _, _, err := prepareOutput(o, size, nil); err != nil {
		t.Error(err)
	}
	// The real statfs answers for a real directory.
	if n, err := freeSpace(dir); err != nil && !errors.Is(err, errSpaceUnknown) || err == nil && n == 0 {
		t.Errorf("freeSpace: %d, %v", n, err)
	}
}
