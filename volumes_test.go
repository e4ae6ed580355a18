package relocate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relocate-dev/relocate/archive"
)

// volumeSet writes 2,500 bytes as a set of three 1,000-byte volumes.
func volumeSet(t *testing.T) (path, indexDigest string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "site.tar")
	w, err := archive.CreateVolumes(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("relocate volumes ", 150))[:2500]
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	_, digest, err := w.Commit(archive.VolumeArchive{Compression: archive.None})
	if err != nil {
		t.Fatal(err)
	}
	return path, digest
}

// How an argument is taken for a volume, a set or neither, and what each
// mistake is: a refusal (exit 3) for what the media holds, a usage error
// for flags that do not fit, an operational error for an index not found.
func TestVolumeArguments(t *testing.T) {
	ctx := context.Background()
	path, digest := volumeSet(t)
	one := func(arg string, o VolumeOptions) (*VerifyReport, error, bool) {
		return verifyOneVolume(ctx, VerifyOptions{Archive: arg, Volumes: o})
	}

	rep, err, ok := one(path+".002", VolumeOptions{IndexDigest: digest})
	if !ok || err != nil || rep.Verdict != "ok" || rep.Volumes.Only != 2 || rep.Volumes.Count != 3 {
		t.Fatalf("volume 2 alone: %v, %v, %+v", ok, err, rep)
	}
	for _, arg := range []string{path + ".001", path + archive.VolumeIndexSuffix, path} {
		if _, err, ok := one(arg, VolumeOptions{}); ok || err != nil {
			t.Errorf("%s is the set, not one volume: %v, %v", arg, ok, err)
		}
	}
	if rep, err, ok := one(path+".001", VolumeOptions{Single: true}); !ok || err != nil || rep.Volumes.Only != 1 {
		t.Errorf("--single-volume NAME.001: %v, %v", ok, err)
	}

	// A renamed set reads under its new name.
	renamed := filepath.Join(t.TempDir(), "other.tar")
	for _, suffix := range []string{".001", ".002", ".003", archive.VolumeIndexSuffix} {
		b, _ := os.ReadFile(path + suffix)
		os.WriteFile(renamed+suffix, b, 0o644)
	}
	if rep, err, ok := one(renamed+".003", VolumeOptions{}); !ok || err != nil || rep.Verdict != "ok" {
		t.Errorf("volume 3 of a renamed set: %v, %v", ok, err)
	}

	b, _ := os.ReadFile(path + ".002")
	b[10] ^= 1
	os.WriteFile(path+".002", b, 0o644)
	rep, err, _ = one(path+".002", VolumeOptions{})
	if !IsRefused(err) || rep.Verdict != "refused" || rep.Problems[0].Subject != "volume 2 of 3 (site.tar.002)" {
		t.Errorf("a corrupt volume: %v, %+v", err, rep)
	}

	refused := []struct {
		arg  string
		o    VolumeOptions
		want string
	}{
		{path + ".002", VolumeOptions{IndexDigest: "sha256:" + strings.Repeat("1", 64)}, "is not the digest given"},
		{path + ".007", VolumeOptions{}, "site.tar.007: not a volume of the set"},
		{path + ".0002", VolumeOptions{}, "site.tar.0002: not a volume of the set"},
	}
	for _, c := range refused {
		if _, err, _ := one(c.arg, c.o); !IsRefused(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal with %q", filepath.Base(c.arg), err, c.want)
		}
	}
	os.WriteFile(path+archive.VolumeIndexSuffix, []byte(`{"schemaVersion":1,"mediaType":"text/plain"}`), 0o644)
	if _, err, _ := one(path+".002", VolumeOptions{}); !IsRefused(err) || !strings.Contains(err.Error(), "volume index") {
		t.Errorf("a bad index: %v", err)
	}

	usage := []struct {
		arg string
		o   VolumeOptions
	}{
		{renamed + archive.VolumeIndexSuffix, VolumeOptions{Single: true}},
		{filepath.Join(t.TempDir(), "plain.tar"), VolumeOptions{IndexDigest: digest}},
	}
	for _, c := range usage {
		_, err := openVolumes(c.arg, c.o)
		if _, verr, ok := one(c.arg, c.o); ok {
			err = verr
		}
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%s %+v: %v, want a usage error", filepath.Base(c.arg), c.o, err)
		}
	}
	_, err = openVolumes(renamed+".002", VolumeOptions{})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "give the first (other.tar.001)") {
		t.Errorf("import of volume 2: %v", err)
	}

	os.Remove(renamed + archive.VolumeIndexSuffix)
	_, err, _ = one(renamed+".002", VolumeOptions{})
	if err == nil || IsRefused(err) || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "give --volume-index FILE") {
		t.Errorf("a volume without its index: %v", err)
	}
}
