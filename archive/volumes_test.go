package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readSet loads an index written at dir/base and concatenates its volumes.
func readSet(t *testing.T, dir, base string) (*VolumeIndex, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, base+VolumeIndexSuffix))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := ParseVolumeIndex(base+VolumeIndexSuffix, raw)
	if err != nil {
		t.Fatalf("the index written does not parse: %v", err)
	}
	var all []byte
	for _, v := range ix.Volumes {
		b, err := os.ReadFile(filepath.Join(dir, v.Name))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != v.Size || fmt.Sprintf("sha256:%x", sha256.Sum256(b)) != v.Digest {
			t.Errorf("%s: %d bytes, digest differs from the index's %s", v.Name, len(b), v.Digest)
		}
		all = append(all, b...)
	}
	if fmt.Sprintf("sha256:%x", sha256.Sum256(all)) != ix.Archive.Digest || int64(len(all)) != ix.Archive.Size {
		t.Errorf("archive digest or size differs from the index")
	}
	return ix, all
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// Written sequentially in uneven pieces or at offsets in any order, from
// parallel writers, a set holds the same bytes and the same index: the
// volumes concatenated are the archive.
func TestVolumeWriterSequentialAndAtOffsets(t *testing.T) {
	data := randomBytes(10_000, 1)
	const size = 3000
	seqDir, atDir := t.TempDir(), t.TempDir()

	w, err := CreateVolumes(filepath.Join(seqDir, "site.tar"), size)
	if err != nil {
		t.Fatal(err)
	}
	for rest, n := data, 1; len(rest) > 0; n = n*3 + 1 {
		k := min(n, len(rest))
		if _, err := w.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
	}
	ixSeq, digSeq, err := w.Commit(VolumeArchive{Compression: None})
	if err != nil {
		t.Fatal(err)
	}

	w, err = CreateVolumes(filepath.Join(atDir, "site.tar"), size)
	if err != nil {
		t.Fatal(err)
	}
	// The last 700 bytes stay unwritten but the very last one, as the
	// end-of-archive marker is: they must read as zeros.
	copy(data[len(data)-700:], make([]byte, 700))
	type piece struct{ off, n int }
	var pieces []piece
	for off := 0; off < len(data)-700; off += 977 {
		pieces = append(pieces, piece{off, min(977, len(data)-700-off)})
	}
	rand.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
	var wg sync.WaitGroup
	for _, p := range pieces {
		wg.Go(func() {
			if _, err := w.WriteAt(data[p.off:p.off+p.n], int64(p.off)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := w.WriteAt([]byte{0}, int64(len(data)-1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	ixAt, digAt, err := w.Commit(VolumeArchive{Compression: None})
	if err != nil {
		t.Fatal(err)
	}

	_, gotAt := readSet(t, atDir, "site.tar")
	if !bytes.Equal(gotAt, data) {
		t.Fatal("volumes written at offsets do not concatenate to the archive")
	}
	if got := dirNames(t, atDir); strings.Join(got, " ") != "site.tar-volumes.json site.tar.001 site.tar.002 site.tar.003 site.tar.004" {
		t.Errorf("files: %v", got)
	}
	if len(ixAt.Volumes) != 4 || ixAt.Volumes[3].Size != 1000 || ixAt.Volumes[1].Offset != size {
		t.Errorf("index: %+v", ixAt.Volumes)
	}
	raw, _ := os.ReadFile(filepath.Join(atDir, "site.tar-volumes.json"))
	if digAt != fmt.Sprintf("sha256:%x", sha256.Sum256(raw)) {
		t.Errorf("Commit's digest %s is not the index file's", digAt)
	}
	// The sequential set of the same bytes (its tail zeroed too) agrees.
	_, gotSeq := readSet(t, seqDir, "site.tar")
	copy(gotSeq[len(gotSeq)-700:], make([]byte, 700))
	if !bytes.Equal(gotSeq, data) || ixSeq.Volumes[0].Digest != ixAt.Volumes[0].Digest || ixSeq.Volumes[2].Digest != ixAt.Volumes[2].Digest {
		t.Error("sequential and offset writes of the same bytes differ")
	}
	if digSeq == digAt {
		t.Error("different content, same index digest")
	}
}

// An exact multiple of the volume size makes no empty last volume; more
// than 999 volumes get four digits, so that NAME.* sorts in order.
func TestVolumeCountAndNames(t *testing.T) {
	dir := t.TempDir()
	w, _ := CreateVolumes(filepath.Join(dir, "a.tar"), 100)
	w.Write(make([]byte, 300))
	ix, _, err := w.Commit(VolumeArchive{Compression: None})
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Volumes) != 3 || ix.Volumes[2].Name != "a.tar.003" {
		t.Errorf("300 bytes in 100-byte volumes: %+v", ix.Volumes)
	}
	if VolumeName("a", 7, 1200) != "a.0007" || VolumeName("a", 7, 999) != "a.007" {
		t.Error("volume names do not widen past 999")
	}
	w, _ = CreateVolumes(filepath.Join(dir, "b.tar"), 10)
	w.WriteAt([]byte("first"), 0)
	if _, err := w.WriteAt([]byte("end"), 10*MaxVolumes); err == nil || !strings.Contains(err.Error(), "larger volume size") {
		t.Errorf("more than %d volumes: %v", MaxVolumes, err)
	}
	w.Abort()
	for _, n := range dirNames(t, dir) {
		if strings.HasPrefix(n, ".b.tar") {
			t.Fatalf("Abort left %s", n)
		}
	}
}

// A new export replaces the set: its index, and no stale volume of an
// earlier export with more volumes stays to join NAME.*. An aborted one
// leaves the earlier set whole.
func TestVolumeWriterReplacesASet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "site.tar")
	write := func(n int) error {
		w, err := CreateVolumes(path, 100)
		if err != nil {
			return err
		}
		w.Write(randomBytes(n, uint64(n)))
		_, _, err = w.Commit(VolumeArchive{Compression: None})
		return err
	}
	if err := write(450); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "site.tar.notes"), []byte("mine"), 0o644)
	if err := write(250); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(dirNames(t, dir), " "); got != "site.tar-volumes.json site.tar.001 site.tar.002 site.tar.003 site.tar.notes" {
		t.Errorf("after a shorter export: %s", got)
	}
	ix, data := readSet(t, dir, "site.tar")
	if len(ix.Volumes) != 3 || !bytes.Equal(data, randomBytes(250, 250)) {
		t.Error("the set is not the new export")
	}
	w, _ := CreateVolumes(path, 100)
	w.Write(randomBytes(900, 9))
	w.Abort()
	if got := strings.Join(dirNames(t, dir), " "); got != "site.tar-volumes.json site.tar.001 site.tar.002 site.tar.003 site.tar.notes" {
		t.Errorf("after an aborted export: %s", got)
	}
}

// writeSet writes data as a set of size-byte volumes and opens it.
func writeSet(t *testing.T, data []byte, size int64) (*VolumeSet, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := CreateVolumes(filepath.Join(dir, "site.tar"), size)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	ix, _, err := w.Commit(VolumeArchive{Compression: None})
	if err != nil {
		t.Fatal(err)
	}
	s := OpenVolumes(ix, dir, "site.tar")
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func TestVolumeSetReads(t *testing.T) {
	data := randomBytes(10_000, 2)
	s, _ := writeSet(t, data, 3000)
	got, err := io.ReadAll(s.Stream())
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stream: %d bytes, %v", len(got), err)
	}
	// Reads across volume boundaries, and at the end.
	for _, c := range []struct{ off, n int }{{0, 10_000}, {2990, 20}, {5999, 3002}, {9990, 10}, {2999, 1}} {
		buf := make([]byte, c.n)
		n, err := s.ReadAt(buf, int64(c.off))
		if err != nil || n != c.n || !bytes.Equal(buf, data[c.off:c.off+c.n]) {
			t.Errorf("ReadAt(%d, %d): %d, %v", c.n, c.off, n, err)
		}
	}
	if n, err := s.ReadAt(make([]byte, 20), 9990); n != 10 || err != io.EOF {
		t.Errorf("ReadAt past the end: %d, %v", n, err)
	}
	st := s.Stream()
	io.Copy(io.Discard, io.LimitReader(st, 4000))
	if bad, err := st.Finish(context.Background()); len(bad) != 0 || err != nil {
		t.Errorf("Finish of a good set: %v, %v", bad, err)
	}
	if bad, err := s.Check(context.Background(), 2); len(bad) != 0 || err != nil {
		t.Errorf("Check of a good set: %v, %v", bad, err)
	}
}

// messages flattens volume errors.
func messages(bad []*VolumeError) string {
	var out []string
	for _, b := range bad {
		out = append(out, b.Error())
	}
	return strings.Join(out, "\n")
}

// A corrupt, swapped, missing or short volume is named by number and file,
// by the stream, the full check and the check of that volume alone.
func TestVolumeSetNamesBadVolumes(t *testing.T) {
	data := randomBytes(10_000, 3)
	ctx := context.Background()
	t.Run("corrupt", func(t *testing.T) {
		s, dir := writeSet(t, data, 3000)
		p := filepath.Join(dir, "site.tar.002")
		b, _ := os.ReadFile(p)
		b[1234] ^= 1
		os.WriteFile(p, b, 0o644)
		st := s.Stream()
		got, _ := io.ReadAll(st)
		if len(got) != len(data) {
			t.Fatal("a corrupt volume stopped the stream")
		}
		bad, err := st.Finish(ctx)
		want := "volume 2 of 4 (site.tar.002): sha256 "
		if err != nil || len(bad) != 1 || !strings.HasPrefix(bad[0].Error(), want) || !strings.Contains(bad[0].Error(), "corrupt") {
			t.Errorf("stream: %v, %v", messages(bad), err)
		}
		if bad, _ := s.Check(ctx, 4); len(bad) != 1 || !strings.HasPrefix(bad[0].Error(), want) {
			t.Errorf("check: %v", messages(bad))
		}
		if e, _ := s.CheckVolume(ctx, 2, p); e == nil || !strings.HasPrefix(e.Error(), want) {
			t.Errorf("alone: %v", e)
		}
		if e, _ := s.CheckVolume(ctx, 3, filepath.Join(dir, "site.tar.003")); e != nil {
			t.Errorf("a good volume alone: %v", e)
		}
	})
	t.Run("swapped", func(t *testing.T) {
		s, dir := writeSet(t, data, 3000)
		a, b := filepath.Join(dir, "site.tar.001"), filepath.Join(dir, "site.tar.002")
		os.Rename(a, a+".x")
		os.Rename(b, a)
		os.Rename(a+".x", b)
		bad, err := s.Check(ctx, 4)
		if err != nil || len(bad) != 2 ||
			!strings.Contains(bad[0].Error(), "volume 1 of 4 (site.tar.001): sha256") || !strings.Contains(bad[0].Error(), "holds the bytes of volume 2 (site.tar.002)") ||
			!strings.Contains(bad[1].Error(), "holds the bytes of volume 1 (site.tar.001)") {
			t.Errorf("check: %v, %v", messages(bad), err)
		}
		st := s.Stream()
		io.Copy(io.Discard, st)
		if bad, _ := st.Finish(ctx); len(bad) != 2 || !strings.Contains(bad[0].Error(), "swapped") {
			t.Errorf("stream: %v", messages(bad))
		}
	})
	t.Run("missing and short", func(t *testing.T) {
		s, dir := writeSet(t, data, 3000)
		os.Remove(filepath.Join(dir, "site.tar.004"))
		os.Truncate(filepath.Join(dir, "site.tar.002"), 2999)
		bad, err := s.Check(ctx, 4)
		if err != nil || messages(bad) != "volume 2 of 4 (site.tar.002): 2999 bytes, the index says 3000: cut short, or not this volume\n"+
			"volume 4 of 4 (site.tar.004): missing (no site.tar.004 in "+dir+")" {
			t.Errorf("check: %v, %v", messages(bad), err)
		}
	})
	t.Run("stale volume not read", func(t *testing.T) {
		s, dir := writeSet(t, data, 3000)
		os.WriteFile(filepath.Join(dir, "site.tar.005"), []byte("stale"), 0o644)
		got, _ := io.ReadAll(s.Stream())
		if !bytes.Equal(got, data) {
			t.Error("a volume the index does not list was read")
		}
	})
}

// The tar reader reads a set at offsets across volumes, as a file.
func TestVolumeSetRandomAccess(t *testing.T) {
	names := []string{"oci-layout", "blobs/sha256/a", "blobs/sha256/b"}
	contents := [][]byte{[]byte("{}"), randomBytes(2500, 4), randomBytes(4000, 5)}
	plan, err := NewPlan(names, []int64{2, 2500, 4000})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w, _ := CreateVolumes(filepath.Join(dir, "site.tar"), 1000)
	if err := plan.WriteHeaders(w); err != nil {
		t.Fatal(err)
	}
	for i, c := range contents {
		w.WriteAt(c, plan.Entries[i].Offset)
	}
	ix, _, err := w.Commit(VolumeArchive{Compression: None})
	if err != nil {
		t.Fatal(err)
	}
	s := OpenVolumes(ix, dir, "site.tar")
	defer s.Close()
	r, err := Open(io.NewSectionReader(s, 0, s.Size()), Options{File: allowAll, Dir: LayoutDirs})
	if err != nil {
		t.Fatal(err)
	}
	if !r.RandomAccess() {
		t.Fatal("a set of an uncompressed archive is not read at offsets")
	}
	var entries []*Entry
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Offset > entries[j].Offset }) // any order
	if len(entries) != len(names) {
		t.Fatalf("%d entries read, %d written", len(entries), len(names))
	}
	for _, e := range entries {
		got, _ := io.ReadAll(r.SectionReader(e))
		i := slices.Index(names, e.Name)
		if !bytes.Equal(got, contents[i]) {
			t.Errorf("%s read at its offset differs", e.Name)
		}
	}
}

func TestParseVolumeIndexRefuses(t *testing.T) {
	s, _ := writeSet(t, randomBytes(7000, 6), 3000)
	good := *s.Index
	tests := []struct {
		name   string
		change func(ix *VolumeIndex)
		want   string
	}{
		{"path in the name", func(ix *VolumeIndex) { ix.Archive.Name = "../etc" }, "not a file name"},
		{"renamed volume", func(ix *VolumeIndex) { ix.Volumes[1].Name = "../../x" }, `volume 2 is named "../../x"`},
		{"gap", func(ix *VolumeIndex) { ix.Volumes[2].Offset++ }, "volume 3 starts at 6001"},
		{"short middle volume", func(ix *VolumeIndex) { ix.Volumes[1].Size-- }, "volume 2 is 2999 bytes"},
		{"size", func(ix *VolumeIndex) { ix.Archive.Size++ }, "add up to 7000 bytes, the archive is 7001"},
		{"digest", func(ix *VolumeIndex) { ix.Volumes[0].Digest = "md5:00" }, "volume 1 digest"},
		{"schema", func(ix *VolumeIndex) { ix.SchemaVersion = 2 }, "schemaVersion 2"},
		{"no volumes", func(ix *VolumeIndex) { ix.Volumes = nil }, "0 volumes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix := good
			ix.Volumes = append([]Volume(nil), good.Volumes...)
			tc.change(&ix)
			b, _ := json.Marshal(ix)
			_, err := ParseVolumeIndex("x-volumes.json", b)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "volume index x-volumes.json: ") {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ParseVolumeIndex("x", []byte("not json")); err == nil {
		t.Error("not JSON accepted")
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"4GiB": 4 << 30, "25GB": 25e9, "4095MiB": 4095 << 20, "1048576": 1 << 20, "4.7GB": 4.7e9,
		"1.5KiB": 1536, "100B": 100, "2 TB": 2e12, "0.5KB": 500,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "4G", "-1", "0", "0.1B", "1e9", "GiB", "4 GiB GiB", "99999999999TiB", "+5"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}
