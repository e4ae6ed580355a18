package main

import (
	"strings"

	"github.com/relocate-dev/relocate"
	"github.com/urfave/cli/v2"
)

// baseNames names the earlier archives a delta relies on.
func baseNames(d *relocate.DeltaInfo) string {
	var names []string
	for _, b := range d.Bases {
		names = append(names, b.String())
	}
	return strings.Join(names, ", ")
}

// sayExpected lists, one a line, the blobs a delta expects at the site and
// the archive that carried each.
func (e *env) sayExpected(c *cli.Context, d *relocate.DeltaInfo, verb string) {
	if d == nil {
		return
	}
	e.say(c, "delta: %s %d layer(s), %s, at the site, carried by %s:\n", verb, len(d.Expected), human(d.ExpectedBytes), baseNames(d))
	names := map[string]string{}
	for _, b := range d.Bases {
		names[b.TOC.String()] = b.Name
	}
	for _, x := range d.Expected {
		e.say(c, "  %s %s %s from %s\n", x.Digest, x.Kind, human(x.Size), names[x.CarriedBy.String()])
	}
}
