package relocate

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/relocate-dev/relocate/internal/atomicfile"
)

// SpaceError is an export refused before any layer was fetched: the
// output's file system has too little free space for the archive.
type SpaceError struct {
	Dir     string
	Archive int64  // the archive's size (uncompressed)
	Needed  uint64 // Archive and a margin
	Free    uint64 // bytes free for an unprivileged writer
}

func (e *SpaceError) Error() string {
	return fmt.Sprintf("not enough free space in %s: the archive needs %d bytes (%s, with a margin of %s), and %d bytes (%s) are free",
		e.Dir, e.Needed, HumanBytes(int64(e.Needed)), HumanBytes(int64(e.Needed)-e.Archive), e.Free, HumanBytes(int64(e.Free)))
}

// spaceMargin is what an export keeps free beyond the archive's size: the
// file system's own overhead, and a compressed archive that comes out a
// little larger than its input (layers are compressed already).
func spaceMargin(size int64) int64 { return size/100 + 16<<20 }

// errSpaceUnknown: the platform cannot say how much space is free; the
// check is skipped.
var errSpaceUnknown = errors.New("free space unknown")

// prepareOutput runs before the first layer is fetched: it removes the
// temporary files that killed exports left in the output's directory
// (their lock is free; a live export's is held, see atomicfile.Stale), then
// checks that the archive of size bytes fits there. The archive's size is
// known from the manifests; a compressed one is counted at its
// uncompressed size, which it comes close to.
func prepareOutput(o ExportOptions, size int64, warnings []string) (removed, _ []string, err error) {
	dir := filepath.Dir(o.Output)
	removed, err = atomicfile.RemoveStale(dir, nil)
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("removing temporary files of killed exports in %s: %v", dir, err))
	}
	free := o.FreeSpace
	if free == nil {
		free = freeSpace
	}
	avail, err := free(dir)
	if errors.Is(err, errSpaceUnknown) {
		return removed, warnings, nil
	}
	if err != nil {
		return removed, warnings, fmt.Errorf("free space in %s: %w", dir, err)
	}
	if o.VolumeSize == 0 {
		avail += partialSpace(o.Output) // reused or removed, it is the archive's
	}
	needed := uint64(size + spaceMargin(size))
	if avail < needed {
		return removed, warnings, &SpaceError{Dir: dir, Archive: size, Needed: needed, Free: avail}
	}
	return removed, warnings, nil
}

// HumanBytes writes a size for people: 1.5 GiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
