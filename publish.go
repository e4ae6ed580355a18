package relocate

import (
	"fmt"
	"maps"
	"slices"

	"github.com/relocate-dev/relocate/tufstore"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// PublishedRepo says what an import did with --publish-tuf NAME=DIR.
type PublishedRepo struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	// Status is "published", or "skipped" with Reason.
	Status   string           `json:"status"`
	Reason   string           `json:"reason,omitempty"`
	Versions map[string]int64 `json:"versions,omitempty"`
	Targets  []string         `json:"targets,omitempty"`
	Notes    []string         `json:"notes,omitempty"`
}

// publishNames is the set of repositories to lay out for publishing.
func (o TrustOptions) publishNames() map[string]bool {
	if len(o.PublishTUF) == 0 {
		return nil
	}
	m := map[string]bool{}
	for n := range o.PublishTUF {
		m[n] = true
	}
	return m
}

// publishTUF writes, after a successful import, each verified repository
// the site asked for into its directory, for TUF clients at the site. A
// directory that holds a newer repository (a higher root or timestamp
// version) is never overwritten: publishing it is skipped, with the reason
// in the report, as the import itself succeeded. Equal versions are
// rewritten (the same signed metadata; the carried targets may differ).
func publishTUF(o TrustOptions, tr *TrustReport) error {
	if len(o.PublishTUF) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(o.PublishTUF))
	for _, name := range names {
		dir := o.PublishTUF[name]
		pr := PublishedRepo{Name: name, Dir: dir, Status: "skipped"}
		var p *tufstore.Published
		if tr != nil && tr.TrustResult != nil {
			for _, rt := range tr.Repositories {
				if rt.Name == name {
					p, pr.Reason = rt.Published, rt.PublishNote
				}
			}
		}
		switch {
		case p == nil && pr.Reason == "":
			pr.Reason = "the archive carries no TUF repository " + name
		case p != nil:
			pr.Versions, pr.Targets, pr.Notes = p.Versions, p.Targets, p.Notes
			rootV, tsV, ok, err := tufstore.PublishedVersions(dir)
			if err != nil {
				return fmt.Errorf("--publish-tuf %s: reading %s: %w", name, dir, err)
			}
			if ok && (rootV > p.Versions[metadata.ROOT] || tsV > p.Versions[metadata.TIMESTAMP]) {
				pr.Reason = fmt.Sprintf("%s holds a newer repository (root v%d, timestamp v%d; this archive: root v%d, timestamp v%d): an older archive never overwrites it",
					dir, rootV, tsV, p.Versions[metadata.ROOT], p.Versions[metadata.TIMESTAMP])
				break
			}
			if err := p.Write(dir); err != nil {
				return fmt.Errorf("--publish-tuf %s: writing %s: %w", name, dir, err)
			}
			pr.Status = "published"
		}
		if pr.Status == "skipped" && tr != nil {
			tr.Warnings = append(tr.Warnings, fmt.Sprintf("TUF %s not published to %s: %s", name, dir, pr.Reason))
		}
		if tr != nil {
			tr.Published = append(tr.Published, pr)
		}
	}
	return nil
}
