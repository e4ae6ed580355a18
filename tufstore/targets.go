package tufstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// TargetFilePrefix marks target files among a chain's files: a target named
// N is carried as TargetFilePrefix + url.PathEscape(N).
const TargetFilePrefix = "target."

// TargetFileName is the name under which a target's content travels.
func TargetFileName(target string) string { return TargetFilePrefix + url.PathEscape(target) }

// targetEntry is what collection reads of a target, leniently: the site's
// verification checks it through TUF.
type targetEntry struct {
	Length int64             `json:"length"`
	Hashes map[string]string `json:"hashes"`
	Custom json.RawMessage   `json:"custom"`
}

// targets reads every target entry of every targets role collected.
func (c *Chain) targets() map[string]targetEntry {
	out := map[string]targetEntry{}
	for _, r := range c.Roles {
		if r.Role == "root" || r.Role == "timestamp" || r.Role == "snapshot" {
			continue
		}
		var m struct {
			Signed struct {
				Targets map[string]targetEntry `json:"targets"`
			} `json:"signed"`
		}
		if json.Unmarshal(c.Files[r.File], &m) != nil {
			continue
		}
		for name, t := range m.Signed.Targets {
			if _, ok := out[name]; !ok {
				out[name] = t
			}
		}
	}
	return out
}

// InTotoTargets lists the targets that a target's custom "in-toto" field
// names (CNAB Security 303: the root layout, its keys and the links).
func InTotoTargets(custom json.RawMessage) []string {
	var c struct {
		InToto []string `json:"in-toto"`
	}
	if len(custom) == 0 || json.Unmarshal(custom, &c) != nil {
		return nil
	}
	return c.InToto
}

// CollectInToto fetches the in-toto files that target's custom field names,
// from targetsURL by their consistent-snapshot names (<sha256>.<basename>),
// and adds them to the chain's files. It returns their names; none when the
// repository has no such target or it names no in-toto files.
func (c *Chain) CollectInToto(ctx context.Context, client *http.Client, targetsURL, target string) ([]string, error) {
	all := c.targets()
	t, ok := all[target]
	if !ok {
		return nil, nil
	}
	names := InTotoTargets(t.Custom)
	for _, n := range names {
		e, ok := all[n]
		if !ok {
			return nil, fmt.Errorf("tuf %s: target %s names in-toto file %s, which no role lists", c.Name, target, n)
		}
		// The CNAB Security layout names in-toto files by consistent names.
		if err := c.fetchTarget(ctx, client, targetsURL, n, e, true, "in-toto file"); err != nil {
			return nil, err
		}
	}
	return names, nil
}
