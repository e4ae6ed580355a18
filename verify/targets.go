package verify

import (
	"encoding/hex"
	"sort"

	"github.com/relocate-dev/relocate/tufstore"
)

// CarriedTarget is a target file an archive carries (export --tuf-targets),
// as the site verified it: found by the TUF delegation walk, with the
// length and hashes the role lists.
type CarriedTarget struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256,omitempty"`
}

// carriedTargets verifies every target file each repository carries
// through its verified session (a file that does not match its target
// refuses the archive: it is tampered) and, where the site asked, lays the
// repository out for publishing while the session is open.
func carriedTargets(in TrustInput, sessions map[string]*tufstore.Session, res *TrustResult, ps *Problems) {
	for i := range res.Repositories {
		rt := &res.Repositories[i]
		s, ok := sessions[rt.Name]
		if !ok {
			continue
		}
		for _, n := range tufstore.CarriedTargets(in.Repos[rt.Name]) {
			data := s.File(n)
			tf, role, err := s.VerifyTarget(n, data)
			if err != nil {
				ps.Add("tuf:"+rt.Name, "%v", err)
				continue
			}
			if rt.targetData == nil {
				rt.targetData = map[string][]byte{}
			}
			rt.targetData[n] = data
			rt.Targets = append(rt.Targets, CarriedTarget{Name: n, Role: role.String(), Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])})
		}
		sort.Slice(rt.Targets, func(a, b int) bool { return rt.Targets[a].Name < rt.Targets[b].Name })
		if in.Publish[rt.Name] {
			p, err := s.Publish()
			if err != nil {
				rt.PublishNote = "not published: " + err.Error()
				continue
			}
			rt.Published = p
		}
	}
}

// Target is the content of a target file that repository repo carries,
// verified through TUF; false when it was not carried (or did not verify).
func (r *TrustResult) Target(repo, name string) ([]byte, bool) {
	if r == nil {
		return nil, false
	}
	for _, rt := range r.Repositories {
		if rt.Name == repo {
			b, ok := rt.targetData[name]
			return b, ok
		}
	}
	return nil, false
}
