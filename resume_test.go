package relocate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/relocate-dev/relocate/archive"
)

// What an interrupted export left for the next run is not debris: the
// cleanup of killed exports' temporary files keeps it, and the space check
// counts it as free (the rerun reuses it or removes it), so that an export
// that died of a full disk resumes once a little space was made.
func TestPartialSurvivesCleanupAndCountsAsFree(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "site.tar")
	partial, journal := archive.PartialPaths(out)
	held := bytes.Repeat([]byte{1}, 8<<20)
	os.WriteFile(partial, held, 0o644)
	os.WriteFile(journal, []byte("{}\n"), 0o644)

	const size = 100 << 20
	needed := uint64(size + spaceMargin(size))
	o := ExportOptions{Output: out, FreeSpace: func(string) (uint64, error) { return needed - 4<<20, nil }}
	removed, _, err := prepareOutput(o, size, nil)
	if err != nil {
		t.Fatalf("with 8 MiB held by the partial and 4 MiB short: %v", err)
	}
	if len(removed) != 0 {
		t.Errorf("removed %v", removed)
	}
	for _, f := range []string{partial, journal} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	os.Remove(partial)
	if _, _, err := prepareOutput(o, size, nil); err == nil {
		t.Error("4 MiB short without a partial: accepted")
	}
}
