package main

import (
	"strings"

	"github.com/relocate-dev/relocate"
	"github.com/urfave/cli/v2"
)

// Volume sets: export --volume-size, and how verify and import find and
// check the volumes.

func volumeSizeFlag() cli.Flag {
	return &cli.StringFlag{Name: "volume-size", Usage: "write the archive as volumes FILE.001, FILE.002, … of at most `SIZE` (4GiB, 25GB for a BD-R, 4095MiB for FAT32, or bytes) and an index FILE-volumes.json naming each volume's bytes and sha256; `cat FILE.*` is the archive"}
}

func volumeIndexFlag() cli.Flag {
	return &cli.StringFlag{Name: "volume-index", Usage: "the volume set's index `FILE`, when it is not next to the volumes (FILE-volumes.json beside FILE.001)"}
}

func volumeDigestFlag() cli.Flag {
	return &cli.StringFlag{Name: "volume-index-digest", Usage: "refuse the volume index unless its sha256 is `sha256:HEX`, the digest export printed (carried apart from the media)"}
}

// volumeSize reads --volume-size.
func volumeSize(c *cli.Context) (int64, error) {
	s := c.String("volume-size")
	if s == "" {
		return 0, nil
	}
	n, err := relocate.ParseSize(s)
	if err != nil {
		return 0, usagef("--volume-size: %v", err)
	}
	if c.String("output") == "-" {
		return 0, usagef("--volume-size writes files: it needs -o FILE, not -o -")
	}
	return n, nil
}

func volumeOptions(c *cli.Context) relocate.VolumeOptions {
	return relocate.VolumeOptions{Index: c.String("volume-index"), IndexDigest: c.String("volume-index-digest"), Single: c.Bool("single-volume")}
}

// sayVolumesWritten lists the volumes an export wrote and the index's
// digest, to be carried apart from the media.
func (e *env) sayVolumesWritten(c *cli.Context, v *relocate.VolumesReport) {
	if v == nil {
		return
	}
	first, last := v.Volumes[0].Name, v.Volumes[len(v.Volumes)-1].Name
	names := first
	if len(v.Volumes) > 1 {
		names += " … " + last
	}
	e.say(c, "%d volume(s) of at most %d bytes (%s): %s; index %s\n", v.Count, v.VolumeSize, human(v.VolumeSize), names, v.Index)
	e.say(c, "volume index digest: %s (carry it apart from the media: verify or import --volume-index-digest %s)\n", v.IndexDigest, v.IndexDigest)
	e.say(c, "archive: %s, sha256 %s (cat %s.* | sha256sum)\n", human(v.Archive.Size), strings.TrimPrefix(v.Archive.Digest, "sha256:"), v.Archive.Name)
}

// sayVolumes says what verify found of a volume set: that its volumes
// match the index or, when one volume was checked alone, that only that
// one was (which it reports).
func (e *env) sayVolumes(c *cli.Context, path string, rep *relocate.VerifyReport) (alone bool) {
	v := rep.Volumes
	if v == nil {
		return false
	}
	if v.Only == 0 {
		if rep.Verdict == "ok" {
			e.say(c, "%s: %d volume(s) match the index %s (sha256:%s)\n", path, v.Count, v.Index, strings.TrimPrefix(v.IndexDigest, "sha256:"))
		}
		return false
	}
	if rep.Verdict != "ok" {
		return true // the error names the volume
	}
	vol := v.Volumes[0]
	e.say(c, "%s: ok: volume %d of %d matches the index %s (%s, sha256 %s)\n", path, v.Only, v.Count, v.Index, human(vol.Size), strings.TrimPrefix(vol.Digest, "sha256:"))
	e.say(c, "only this volume was checked: the archive's content is checked when all %d volumes are read together (verify %s)\n", v.Count, v.First)
	return true
}
