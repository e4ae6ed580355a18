package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The test images make an archive of about 1.1 MB: 300 kB volumes make four.
const testVolumeSize = "300KB"

// volumeReport is what export --json says of the volumes it wrote.
type volumeReport struct {
	Volumes struct {
		Index, IndexDigest string
		Count              int
		VolumeSize         int64
		Archive            struct{ Size int64 }
		Volumes            []struct{ Name string }
	}
}

// exportVolumes exports every test image into volumes at path.
func exportVolumes(t *testing.T, path string) volumeReport {
	t.Helper()
	r := mustRun(t, append([]string{"export", "-o", path, "--plain-http", "--volume-size", testVolumeSize, "--json"}, refs...)...)
	var rep volumeReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("export --json: %v\n%s", err, r.stdout)
	}
	if rep.Volumes.Count < 3 || len(rep.Volumes.Volumes) != rep.Volumes.Count || rep.Volumes.VolumeSize != 300_000 {
		t.Fatalf("want 3 or more volumes of 300000 bytes: %+v", rep.Volumes)
	}
	if !strings.HasPrefix(rep.Volumes.IndexDigest, "sha256:") || !strings.Contains(r.stderr, "volume index digest: "+rep.Volumes.IndexDigest) {
		t.Errorf("the index digest is not reported (human and --json):\n%s", r.stderr)
	}
	return rep
}

// catVolumes is `cat NAME.*`: what the shell's glob picks, in its order.
func catVolumes(t *testing.T, path string) []byte {
	t.Helper()
	names, err := filepath.Glob(path + ".*")
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, n := range names {
		all = append(all, mustRead(t, n)...)
	}
	return all
}

// pipeBytes feeds data through a real pipe.
func pipeBytes(t *testing.T, data []byte) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write(data); w.Close() }()
	t.Cleanup(func() { r.Close() })
	return r
}

// copySet copies a volume set into a directory of its own, to damage it.
func copySet(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	names, _ := filepath.Glob(path + "*")
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(n)), mustRead(t, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, filepath.Base(path))
}

func okNaming(t *testing.T, what string, r result, want ...string) {
	t.Helper()
	if r.code != 0 {
		t.Errorf("%s: exit %d, want 0\n%s", what, r.code, r.stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: the output lacks %q:\n%s", what, w, r.stderr)
		}
	}
}

// TestVolumes: an archive split into volumes is the unsplit archive cut
// up; each volume verifies alone; the set verifies and imports from its
// first volume, its index, or `cat NAME.* |`.
func TestVolumes(t *testing.T) {
	needRegistries(t)
	whole := filepath.Join(t.TempDir(), "site.tar")
	exportAll(t, whole)
	dir := t.TempDir()
	path := filepath.Join(dir, "site.tar")
	rep := exportVolumes(t, path)
	n := rep.Volumes.Count

	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("site.tar.%03d", i))
	}
	if got := strings.Join(dirNames(t, dir), " "); got != "site.tar-volumes.json "+strings.Join(want, " ") {
		t.Fatalf("files written: %s", got)
	}
	if !bytes.Equal(catVolumes(t, path), mustRead(t, whole)) {
		t.Fatal("the volumes concatenated are not the unsplit archive")
	}

	for i := 1; i <= n; i++ {
		args := []string{"verify", fmt.Sprintf("%s.%03d", path, i)}
		if i == 1 {
			args = append(args, "--single-volume") // the first alone; without the flag it is the set
		}
		okNaming(t, "verify of one volume", relocateCmd(t, nil, args...),
			fmt.Sprintf("ok: volume %d of %d matches the index", i, n), "only this volume was checked")
	}
	r := relocateCmd(t, nil, "verify", path+".003", "--json")
	var vrep struct {
		Verdict string
		Volumes struct{ Only, Count int }
		Images  []any
	}
	if err := json.Unmarshal([]byte(r.stdout), &vrep); err != nil || r.code != 0 || vrep.Verdict != "ok" || vrep.Volumes.Only != 3 || vrep.Volumes.Count != n || len(vrep.Images) != 0 {
		t.Errorf("verify NAME.003 --json: exit %d, %+v (%v)", r.code, vrep, err)
	}

	for _, arg := range []string{path + ".001", path + "-volumes.json", path} {
		okNaming(t, "verify "+filepath.Base(arg), relocateCmd(t, nil, "verify", arg, "--volume-index-digest", rep.Volumes.IndexDigest),
			fmt.Sprintf("%d volume(s) match the index", n), fmt.Sprintf("ok: %d image(s)", len(images)))
	}
	// The index elsewhere than beside the volumes.
	other := filepath.Join(t.TempDir(), "carried-apart.json")
	os.WriteFile(other, mustRead(t, path+"-volumes.json"), 0o644)
	okNaming(t, "verify --volume-index", relocateCmd(t, nil, "verify", path+".002", "--volume-index", other), "ok: volume 2 of")

	wrong := "sha256:" + strings.Repeat("0", 64)
	refusedNaming(t, "verify with another index digest", relocateCmd(t, nil, "verify", path+".001", "--volume-index-digest", wrong),
		"volume index "+path+"-volumes.json", "is not the digest given")
	refusedNaming(t, "verify of one volume with another index digest", relocateCmd(t, nil, "verify", path+".002", "--volume-index-digest", wrong),
		"is not the digest given")

	// A stale volume of an earlier, longer export is never read.
	stale := fmt.Sprintf("%s.%03d", path, n+1)
	os.WriteFile(stale, []byte("left from an earlier export"), 0o644)
	okNaming(t, "verify with a stale volume beside", relocateCmd(t, nil, "verify", path+".001"), "volume(s) match the index")
	refusedNaming(t, "verify of the stale volume", relocateCmd(t, nil, "verify", stale), "not a volume of the set", "earlier export")
	os.Remove(stale)

	mustRun(t, "import", path+".001", "--to", dst.Host+"/vol-first", "--plain-http")
	checkDestination(t, "vol-first")
	mustRun(t, "import", path+"-volumes.json", "--to", dst.Host+"/vol-index", "--plain-http", "--volume-index-digest", rep.Volumes.IndexDigest)
	checkDestination(t, "vol-index")
	r = relocateCmd(t, pipeBytes(t, catVolumes(t, path)), "import", "-", "--to", dst.Host+"/vol-cat", "--plain-http")
	if r.code != 0 {
		t.Fatalf("cat NAME.* | relocate import -: exit %d\n%s", r.code, r.stderr)
	}
	checkDestination(t, "vol-cat")
	mustRun(t, "inspect", path+".001")

	r = relocateCmd(t, nil, "import", path+".002", "--to", dst.Host+"/vol-second", "--plain-http")
	if r.code != exitUsage || !strings.Contains(r.stderr, "give the first (site.tar.001)") {
		t.Errorf("import of a volume other than the first: exit %d\n%s", r.code, r.stderr)
	}
}

// TestVolumesBad: a corrupt, missing or swapped volume is named by number,
// alone and in the set, and an import refuses it (exit 3) before any
// manifest is pushed.
func TestVolumesBad(t *testing.T) {
	needRegistries(t)
	path := filepath.Join(t.TempDir(), "site.tar")
	n := exportVolumes(t, path).Volumes.Count
	of := fmt.Sprintf(" of %d ", n)

	t.Run("corrupt", func(t *testing.T) {
		p := copySet(t, path)
		b := mustRead(t, p+".002")
		b[len(b)/2] ^= 0x40
		os.WriteFile(p+".002", b, 0o644)
		vol2 := "volume 2" + of + "(site.tar.002)"
		refusedNaming(t, "verify NAME.002", relocateCmd(t, nil, "verify", p+".002"), vol2+": sha256 ", "does not match the index")
		okNaming(t, "verify NAME.003", relocateCmd(t, nil, "verify", p+".003"), "ok: volume 3")
		refusedNaming(t, "verify of the set", relocateCmd(t, nil, "verify", p+".001"), vol2+": sha256 ", "does not match the index")
		r := relocateCmd(t, nil, "import", p+".001", "--to", dst.Host+"/vol-corrupt", "--plain-http")
		refusedNaming(t, "import", r, vol2+": sha256 ", "does not match the index")
		if tags := tagsUnder(t, "vol-corrupt"); len(tags) != 0 {
			t.Errorf("an import from a bad volume tagged %v", tags)
		}
	})
	t.Run("missing", func(t *testing.T) {
		p := copySet(t, path)
		os.Remove(p + ".003")
		vol3 := "volume 3" + of + "(site.tar.003): missing"
		refusedNaming(t, "verify of the set", relocateCmd(t, nil, "verify", p+".001"), vol3)
		refusedNaming(t, "verify NAME.003", relocateCmd(t, nil, "verify", p+".003"), vol3)
		refusedNaming(t, "import", relocateCmd(t, nil, "import", p+".001", "--to", dst.Host+"/vol-missing", "--plain-http"), vol3)
		if repos := catalog(t, dst.Host, "vol-missing"); len(repos) != 0 {
			t.Errorf("an import from an incomplete set pushed to %v", repos)
		}
	})
	t.Run("swapped", func(t *testing.T) {
		p := copySet(t, path)
		one, two := mustRead(t, p+".001"), mustRead(t, p+".002")
		os.WriteFile(p+".001", two, 0o644)
		os.WriteFile(p+".002", one, 0o644)
		refusedNaming(t, "verify NAME.002", relocateCmd(t, nil, "verify", p+".002"),
			"volume 2"+of+"(site.tar.002): sha256", "holds the bytes of volume 1 (site.tar.001), so volumes are swapped")
		r := relocateCmd(t, nil, "verify", p+".001", "--json")
		refusedNaming(t, "verify of the set", r, "volume 1"+of+"(site.tar.001): sha256", "holds the bytes of volume 2 (site.tar.002)", "volume 2"+of+"(site.tar.002)")
		var doc struct {
			Problems []struct{ Subject, Reason string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Problems) == 0 {
			t.Errorf("verify --json of a swapped set: %v\n%s", err, r.stdout)
		}
		refusedNaming(t, "import", relocateCmd(t, nil, "import", p+".001", "--to", dst.Host+"/vol-swapped", "--plain-http"), "swapped")
	})
}

// TestVolumesZstd: a compressed archive is split as a stream: its volumes
// concatenated are the unsplit .zst byte for byte; it verifies and
// imports from its first volume and through a pipe, and names a bad
// volume.
func TestVolumesZstd(t *testing.T) {
	needRegistries(t)
	whole := filepath.Join(t.TempDir(), "site.tar.zst")
	exportAll(t, whole)
	path := filepath.Join(t.TempDir(), "site.tar.zst")
	n := exportVolumes(t, path).Volumes.Count
	if !bytes.Equal(catVolumes(t, path), mustRead(t, whole)) {
		t.Fatal("the zstd volumes concatenated are not the unsplit archive")
	}
	okNaming(t, "verify of the set", relocateCmd(t, nil, "verify", path+".001"), fmt.Sprintf("%d volume(s) match the index", n))
	okNaming(t, "verify of one volume", relocateCmd(t, nil, "verify", path+".002"), "ok: volume 2")
	mustRun(t, "import", path+".001", "--to", dst.Host+"/volz-first", "--plain-http")
	checkDestination(t, "volz-first")
	if r := relocateCmd(t, pipeBytes(t, catVolumes(t, path)), "import", "-", "--to", dst.Host+"/volz-cat", "--plain-http"); r.code != 0 {
		t.Fatalf("cat NAME.* | relocate import -: exit %d\n%s", r.code, r.stderr)
	}
	checkDestination(t, "volz-cat")

	p := copySet(t, path)
	b := mustRead(t, p+".002")
	b[len(b)/3] ^= 1
	os.WriteFile(p+".002", b, 0o644)
	vol2 := fmt.Sprintf("volume 2 of %d (site.tar.zst.002): sha256 ", n)
	refusedNaming(t, "verify of the set", relocateCmd(t, nil, "verify", p+".001"), vol2, "does not match the index")
	r := relocateCmd(t, nil, "import", p+".001", "--to", dst.Host+"/volz-corrupt", "--plain-http")
	refusedNaming(t, "import", r, vol2)
	if tags := tagsUnder(t, "volz-corrupt"); len(tags) != 0 {
		t.Errorf("an import from a bad volume tagged %v", tags)
	}
}

// TestVolumesExportLeavesNothingOnFailure: volumes appear only when the
// whole export succeeded; a bad size or -o - is a usage error.
func TestVolumesExportLeavesNothingOnFailure(t *testing.T) {
	needRegistries(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "site.tar")
	r := relocateCmd(t, nil, "export", "-o", out, "--plain-http", "--volume-size", testVolumeSize, refs[0], src.Host+"/team/absent:v1")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	if ents := dirNames(t, dir); len(ents) != 0 {
		t.Errorf("a failed export left %v", ents)
	}
	for _, args := range [][]string{
		{"export", "-o", out, "--volume-size", "4G", refs[0]},
		{"export", "-o", out, "--volume-size", "0", refs[0]},
		{"export", "-o", "-", "--volume-size", "4GiB", refs[0]},
	} {
		r := relocateCmd(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--volume-size") {
			t.Errorf("%v: exit %d, want %d naming --volume-size\n%s", args, r.code, exitUsage, r.stderr)
		}
	}
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
