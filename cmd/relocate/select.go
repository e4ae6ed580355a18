package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/relocate-dev/relocate"
	"github.com/urfave/cli/v2"
)

// Choosing what lands: import --include/--exclude/--map, export --platform.

func selectFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "include", Usage: "import only images whose original reference matches `PATTERN` (the policy's path patterns: * matches any run, / and : included; ? one character) (repeatable); a selected CNAB bundle brings its images"},
		&cli.StringSliceFlag{Name: "exclude", Usage: "leave out images whose original reference matches `PATTERN` (repeatable; wins over --include); they are verified with the archive, neither bound nor pushed, and listed in the report and the audit log"},
		&cli.StringFlag{Name: "map", Usage: "place images explicitly: a JSON `FILE` mapping original reference to destination reference (a tag or a digest, registry included), the shape --mapping writes; images it does not name land under --to, which may be omitted when it names them all"},
	}
}

func platformFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "platform", Usage: "carry only this platform of each multi-platform index: `OS/ARCH[/VARIANT]` (repeatable; without a variant, any variant). The chosen platform manifests travel alone under their own digests, and land as such: under the tag when one platform of an index was chosen, by digest when several were; the index travels with its signatures so the site can vouch through it, but is not pushed. A single-platform image of another platform is an error; bundles travel whole"}
}

// selection reads import's selection flags.
func selection(c *cli.Context) (include, exclude []string, m map[string]string, err error) {
	include, exclude = c.StringSlice("include"), c.StringSlice("exclude")
	f := c.String("map")
	if f == "" {
		return include, exclude, nil, nil
	}
	data, err := os.ReadFile(f)
	if err != nil {
		return nil, nil, nil, usagef("--map: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, nil, nil, usagef("--map %s: want a JSON object of original reference to destination reference: %v", f, err)
	}
	if len(m) == 0 {
		return nil, nil, nil, usagef("--map %s maps no image", f)
	}
	return include, exclude, m, nil
}

// sayExport prints what --platform chose and what the export cleaned up.
func (e *env) sayExport(c *cli.Context, rep *relocate.ExportReport) {
	for _, p := range rep.RemovedTemporaryFiles {
		e.say(c, "removed %s, left by an export that was killed\n", p)
	}
	for _, im := range rep.Images {
		if im.Index != nil {
			e.say(c, "platform %s of %s (index %s): carried alone as %s (%s), lands as that manifest\n", im.Index.Platform, im.Index.Ref, short(im.Index.Digest.String()), im.Ref, short(im.Digest.String()))
		}
	}
}

// sayImport prints what the selection left out.
func (e *env) sayImport(c *cli.Context, rep *relocate.ImportReport) {
	if len(rep.Excluded) > 0 {
		e.say(c, "left out (--include/--exclude): %s\n", strings.Join(rep.Excluded, ", "))
	}
}

func platformNote(im relocate.ImportedImage) string {
	if im.Index == nil {
		return ""
	}
	return fmt.Sprintf(" (platform %s of %s)", im.Index.Platform, im.Index.Ref)
}

// freeSpace is how export learns the free space of the output's file
// system; nil means statfs. Tests replace it.
var freeSpace func(dir string) (uint64, error)

// placedRegistries are the registries an import pushes to: --to's and
// those the --map destinations name (a password given with --username may
// go to one registry only).
func placedRegistries(to string, m map[string]string) []string {
	hosts := importRegistries(to)
	for _, d := range m {
		if h, err := relocate.RegistryHost(d); err == nil && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	return hosts
}
