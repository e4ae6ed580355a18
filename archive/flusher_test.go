package archive

import (
	"errors"
	"strings"
	"testing"
)

type failingSync struct{ calls int }

func (f *failingSync) Sync() error { f.calls++; return errors.New("EIO") }

// A write-back error reported to a background fsync is reported to that
// fsync only: the export must fail on it, not trust the final sync.
func TestFlusherReportsBackgroundSyncErrors(t *testing.T) {
	f := &failingSync{}
	fl := startFlusher(f)
	fl.wrote(flushEvery)
	fl.wrote(flushEvery)
	err := fl.stop()
	if err == nil || !strings.Contains(err.Error(), "syncing the archive: EIO") || f.calls == 0 {
		t.Fatalf("stop: %v after %d syncs", err, f.calls)
	}
}
