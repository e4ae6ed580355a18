package relocate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"syscall"

	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/internal/atomicfile"
	"github.com/relocate-dev/relocate/internal/pause"
)

// ResumeReport says what an export took from an interrupted earlier run.
type ResumeReport struct {
	// Entries is how many layers (or, compressed, frames) were reused,
	// Bytes their size: each was checked against its digest first.
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// planKey identifies what an archive will hold, byte for byte: the table
// of contents names every blob by digest and size and fixes their order,
// index.json the images, and the compression how it is written.
func planKey(comp archive.Compression, heads [][]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "relocate export plan\x00%s\x00", comp)
	for _, b := range heads {
		fmt.Fprintf(h, "%d\x00", len(b))
		h.Write(b)
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil))
}

// writeFile writes the archive to o.Output. Unless o.NoResume, it goes
// through a partial file that a failed or killed run leaves for the next
// run of the same export to resume (see archive.Partial); with NoResume,
// through a temporary file that a failure removes.
func writeFile(ctx context.Context, o ExportOptions, rep *ExportReport, plan *archive.Plan, content archive.Content, heads [][]byte, prog Progress) error {
	if o.NoResume {
		if err := archive.RemovePartial(o.Output); err != nil {
			return err
		}
		f, err := atomicfile.CreateLocked(o.Output, 0o644)
		if err != nil {
			return err
		}
		defer f.Abort()
		if o.Compression == archive.None {
			err = archive.WriteParallel(ctx, f.File, plan, content, o.Jobs)
		} else {
			err = archive.WriteStream(ctx, f, o.Compression, plan, content)
		}
		if err != nil {
			return err
		}
		if st, err := f.Stat(); err == nil {
			rep.ArchiveSize = st.Size()
		}
		if err := f.Commit(); err != nil {
			return fmt.Errorf("writing %s: %w", o.Output, err)
		}
		return nil
	}
	p, err := archive.OpenPartial(ctx, o.Output, plan, content, archive.PartialOptions{
		Compression: o.Compression, Key: planKey(o.Compression, heads), Jobs: o.Jobs, Checked: prog.Add,
	})
	if err != nil {
		return err
	}
	if n, b := p.Reused(); n > 0 {
		rep.Resumed = &ResumeReport{Entries: n, Bytes: b}
	}
	pause.At("export-resumed")
	if err := p.Write(ctx); err != nil {
		if kept := p.Abandon(); kept != nil {
			return fmt.Errorf("%w (what is complete stays in %s: run the same export again to resume)", err, kept.Partial)
		}
		return err
	}
	if size, err := p.Size(); err == nil {
		rep.ArchiveSize = size
	}
	pause.At("export-written")
	if err := p.Commit(); err != nil {
		return fmt.Errorf("writing %s: %w", o.Output, err)
	}
	return nil
}

// partialSpace is the disk space that what an interrupted export to output
// left holds: this export reuses it or removes it, so the space check
// counts it as free (an export that died of a full disk must be able to
// resume once a little space was made).
func partialSpace(output string) uint64 {
	partial, _ := archive.PartialPaths(output)
	st, err := os.Stat(partial)
	if err != nil {
		return 0
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Blocks) * 512 // an uncompressed partial is sparse
	}
	return uint64(st.Size())
}
