package verify

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/bundle"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/tufstore/notary"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TrustInput is everything a trust decision depends on. Only Repos comes
// from the archive; the rest belongs to the site.
type TrustInput struct {
	Repos  map[string]map[string][]byte   // TUF repository name → metadata files, from the archive
	State  map[string]*tufstore.RepoState // what earlier imports recorded
	Pins   map[string][]byte              // roots pinned on the command line (--trust)
	PinCAs map[string]*x509.CertPool      // CAs a Notary GUN's root certificates must chain to (--trust-ca)
	// Notary holds each GUN's Notary v1 trust data, from the archive.
	Notary map[string]map[string][]byte
	Policy *Policy
	Now    time.Time
	Images []layout.Image
	// Bundles were checked by Bundles: a bundle binds through bundle.json.
	Bundles []layout.Bundle
	// RunInspections lets in-toto inspections (arbitrary commands) run.
	RunInspections bool
	// Publish names the TUF repositories to lay out for clients at the site.
	Publish map[string]bool
}

// RepoTrust is the outcome for one TUF repository.
type RepoTrust struct {
	Name     string          `json:"name"`
	Roles    []tufstore.Role `json:"roles"`
	Grace    []string        `json:"grace,omitempty"` // roles accepted only thanks to the policy's grace
	Pinned   bool            `json:"pinnedNow"`       // first import: the root came from --trust
	graces   tufstore.Grace
	Before   map[string]int64    `json:"before"`
	After    map[string]int64    `json:"after"`
	NewState *tufstore.RepoState `json:"-"`
	// StateName is where the site keeps this repository's state.
	StateName string `json:"-"`
	// Targets are the target files the archive carries, each verified
	// through the TUF session (targets.go).
	Targets []CarriedTarget `json:"targets,omitempty"`
	// Published is the repository laid out for clients, when the site asked
	// to publish it (TrustInput.Publish); PublishNote says why not.
	Published   *tufstore.Published `json:"-"`
	PublishNote string              `json:"publishNote,omitempty"`
	targetData  map[string][]byte
}

// Vouch says who vouched for an image.
type Vouch struct {
	Repository string `json:"repository"`
	Role       string `json:"role"`
	Version    int64  `json:"version"`
}

// ImageTrust is the outcome for one image.
type ImageTrust struct {
	Ref       string  `json:"ref"`
	VouchedBy []Vouch `json:"vouchedBy,omitempty"`
	// Unvouched is set when the site's policy let the image in without TUF.
	Unvouched bool `json:"unvouched,omitempty"`
	// Through names the index (reference@digest) the image was vouched for
	// through, when export --platform chose it out of that index.
	Through string `json:"through,omitempty"`
}

// TrustResult is the whole trust decision.
type TrustResult struct {
	Repositories []RepoTrust   `json:"repositories"`
	Images       []ImageTrust  `json:"images"`
	Bundles      []BundleTrust `json:"bundles,omitempty"`
}

// Earliest returns the role that expires first, across repositories.
func (r *TrustResult) Earliest() (repo string, role tufstore.Role, ok bool) {
	for _, rt := range r.Repositories {
		for _, ro := range rt.Roles {
			if !ok || ro.Expires.Before(role.Expires) {
				repo, role, ok = rt.Name, ro, true
			}
		}
	}
	return repo, role, ok
}

// Trust verifies every TUF repository an archive carries from the site's
// trusted state (or a root pinned now, never trust on first use), and then
// binds every image to targets that vouch for it, as the site's policy
// demands. Problems are recorded in ps; sessions are closed before return.
func Trust(in TrustInput, ps *Problems) *TrustResult {
	res := &TrustResult{}
	sessions := map[string]*tufstore.Session{}
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	names := slices.Sorted(maps.Keys(in.Repos))
	for _, name := range names {
		s, rt, err := openRepo(name, in)
		if err != nil {
			ps.Add("tuf:"+name, "%v", err)
			continue
		}
		sessions[name] = s
		res.Repositories = append(res.Repositories, *rt)
	}
	notaries := map[string]*notary.Result{}
	for _, gun := range slices.Sorted(maps.Keys(in.Notary)) {
		nr, rt, err := notaryRepo(gun, in.Notary[gun], in)
		if err != nil {
			ps.Add("notary:"+gun, "%v", err)
			continue
		}
		notaries[gun] = nr
		res.Repositories = append(res.Repositories, *rt)
	}
	if ps.Len() > 0 {
		return res
	}
	res.Images, res.Bundles = bindAll(in, sessions, notaries, ps)
	carriedTargets(in, sessions, res, ps)
	for i := range res.Repositories {
		rt := &res.Repositories[i]
		s, ok := sessions[rt.Name]
		if !ok {
			continue // a Notary GUN, complete already
		}
		// The lookups verified delegated roles: they are part of the
		// decision, of the audit record and of the freshness re-checks.
		rt.Roles = s.Roles()
		st, err := s.NewState()
		if err != nil {
			ps.Add("tuf:"+rt.Name, "reading the updated state: %v", err)
			continue
		}
		rt.NewState.Files = st
		rt.NewState.Delegated = map[string]int64{}
		for _, r := range rt.Roles {
			if len(r.Path) > 0 {
				rt.NewState.Delegated[r.Role] = r.Version
			}
		}
		rt.After = tufstore.Versions(st)
		for role, v := range rt.NewState.Delegated {
			rt.After[role] = v
		}
	}
	return res
}

// CheckFresh refuses, at t, any role that the decision relied on and that
// has expired since, beyond its grace: an import checks again before it
// tags anything and before it commits the state.
func (r *TrustResult) CheckFresh(t time.Time) error {
	if r == nil {
		return nil
	}
	ps := &Problems{}
	for _, rt := range r.Repositories {
		for _, ro := range rt.Roles {
			g := time.Duration(0)
			if len(ro.Path) == 0 {
				g = rt.graces.For(ro.Role)
			}
			if !t.Add(-g).Before(ro.Expires) {
				ps.Add(subjectOf(rt.Name), "role %s (version %d) expired at %s, during the import (checked at %s, grace %s)",
					ro.Role, ro.Version, ro.Expires.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339), g)
			}
		}
	}
	return ps.Err()
}

func subjectOf(repo string) string {
	if strings.HasPrefix(repo, "notary:") {
		return repo
	}
	return "tuf:" + repo
}

// openRepo picks the trusted root (state first, else a pin) and runs the
// client workflow; expiry is decided role by role, with the policy's grace
// for timestamp and snapshot only.
func openRepo(name string, in TrustInput) (*tufstore.Session, *RepoTrust, error) {
	c := tufCarried(name)
	rt, err := c.open(in)
	if err != nil {
		return nil, nil, err
	}
	trusted := tufstore.Trusted{Root: c.pin}
	if c.known {
		trusted = tufstore.Trusted{Root: c.state.Files["root.json"], Files: c.state.Files}
	}
	s, err := tufstore.Update(name, in.Repos[name], trusted, in.Now, in.Policy.Graces())
	if err != nil {
		return nil, nil, err
	}
	for _, r := range s.Graced() {
		rt.Grace = append(rt.Grace, fmt.Sprintf("%s (version %d) expired %s, accepted within the policy's %s grace", r.Role, r.Version, r.Expires.UTC().Format(time.RFC3339), s.GraceFor(r.Role)))
	}
	return s, rt, nil
}

// bindAll binds bundles (through bundle.json) and then images: an image no
// target vouches for is still vouched for when a vouched bundle pins its
// digest (contentDigest), as CNAB Security intends.
func bindAll(in TrustInput, sessions map[string]*tufstore.Session, notaries map[string]*notary.Result, ps *Problems) ([]ImageTrust, []BundleTrust) {
	isBundle := map[string]bool{}
	pinnedBy := map[string]string{} // image reference@digest → bundle
	var bundles []BundleTrust
	vouched := map[v1.Hash]bool{}
	for _, b := range in.Bundles {
		isBundle[b.Ref] = true
		it, why := bind(layout.Image{Ref: b.Ref, Digest: b.Digest, Size: b.Size}, in, sessions)
		bt := BundleTrust{Ref: b.Ref, VouchedBy: it.VouchedBy}
		if why != "" {
			ps.Add(b.Ref, "bundle not vouched for: %s", why)
		} else if len(it.VouchedBy) > 0 {
			note, err := bundleInToto(b, it.VouchedBy[0], in, sessions)
			if err != nil {
				ps.Add(b.Ref, "in-toto: %v", err)
			}
			bt.InTotoNote, bt.inToto = note, err == nil && note != ""
			for _, bi := range b.Images {
				if bi.Pinned {
					pinnedBy[pinKey(bi.Ref, bi.Digest)] = b.Ref
				}
			}
		}
		bundles = append(bundles, bt)
	}
	var images []ImageTrust
	for _, im := range in.Images {
		if isBundle[im.Ref] {
			continue
		}
		// A platform manifest chosen out of an index is vouched for as the
		// index was: TUF targets and Notary name the index (Structure
		// checked that it lists this manifest).
		subject, via := im, ""
		if x := through(im); x != nil {
			subject, via = *x, x.Ref+"@"+x.Digest.String()
		}
		// Notary trust data for the image's GUN decides, when the archive
		// carries it and the site's policy has no mapping of its own for it.
		if v, found, why := notaryVouch(subject, notaries); found && len(in.Policy.mappingsFor(subject.Ref)) == 0 {
			if why != "" {
				ps.Add(im.Ref, "not vouched for: %s", why)
			} else {
				vouched[im.Digest] = true
			}
			it := ImageTrust{Ref: im.Ref}
			if v != nil {
				it.VouchedBy, it.Through = []Vouch{*v}, via
			}
			images = append(images, it)
			continue
		}
		it, why := bind(subject, in, sessions)
		it.Ref = im.Ref
		if len(it.VouchedBy) > 0 {
			it.Through = via
		}
		if why != "" && via != "" {
			// A target may name the platform manifest itself.
			if own, ownWhy := bind(im, in, sessions); ownWhy == "" {
				it, why = own, ""
			}
		}
		if why != "" {
			if ref, ok := pinnedBy[pinKey(im.Ref, im.Digest)]; ok {
				it, why = ImageTrust{Ref: im.Ref, VouchedBy: []Vouch{{Repository: "bundle " + ref, Role: "contentDigest"}}}, ""
			}
		}
		if why != "" {
			ps.Add(im.Ref, "not vouched for: %s", why)
		}
		if len(it.VouchedBy) > 0 {
			vouched[im.Digest] = true
		}
		images = append(images, it)
	}
	for i, b := range in.Bundles {
		all := true
		for _, bi := range b.Images {
			if !(bi.Pinned && len(bundles[i].VouchedBy) > 0) && !vouched[bi.Digest] {
				all = false
			}
		}
		bundles[i].ImagesTUF = all
		lvl := bundle.SecurityLevel(bundle.Protection{BundleTUF: len(bundles[i].VouchedBy) > 0, ImagesTUF: all, BundleInToto: bundles[i].inToto})
		bundles[i].Level = lvl.String()
		if min := in.Policy.minLevel(); min > 0 && lvl.Number() < min {
			ps.Add(b.Ref, "CNAB Security level %s is below the policy's minimum %d", lvl, min)
		}
	}
	return images, bundles
}

// bind checks one image against the repositories and the policy, and says
// why it is not vouched for ("" when it is, or when nothing asks for it).
func bind(im layout.Image, in TrustInput, sessions map[string]*tufstore.Session) (ImageTrust, string) {
	it := ImageTrust{Ref: im.Ref}
	mappings := in.Policy.mappingsFor(im.Ref)
	if len(mappings) == 0 {
		// No mapping of the site's matched: the image may be allowed in
		// unvouched; else any repository of the archive may vouch for it.
		allowed := in.Policy.allowsUnvouched(im.Ref)
		if len(sessions) > 0 {
			vouches, why := satisfy(im, Mapping{Repositories: slices.Sorted(maps.Keys(sessions)), Threshold: 1, Terminating: true}, sessions)
			switch {
			case why == "":
				it.VouchedBy = vouches
				return it, ""
			case !allowed:
				return it, why
			}
			it.Unvouched = true
			return it, ""
		}
		if in.siteTrusts() && !allowed {
			// A downgrade: the site relies on signed metadata, the archive brings none for this image.
			return it, "this site has pinned or recorded trust metadata, and the archive carries none that vouches for this image (allow it explicitly with the policy's allowUnvouched)"
		}
		it.Unvouched = in.siteTrusts()
		return it, "" // allowed, or nothing pinned and no policy
	}
	var reasons []string
	for _, m := range mappings {
		vouches, why := satisfy(im, m, sessions)
		if why == "" {
			it.VouchedBy = vouches
			return it, ""
		}
		reasons = append(reasons, why)
		if m.Terminating {
			break
		}
	}
	// A mapping matched and failed: no allow-list undoes that.
	return it, strings.Join(reasons, "; ")
}

// satisfy checks one mapping for an image: threshold repositories list the
// image's reference as a target with its digest and size, and every role
// requirement holds. It returns the vouches, or why it failed.
func satisfy(im layout.Image, m Mapping, sessions map[string]*tufstore.Session) ([]Vouch, string) {
	want := &metadata.TargetFiles{Length: im.Size, Hashes: metadata.Hashes{im.Digest.Algorithm: mustHex(im.Digest.Hex)}}
	var vouches []Vouch
	var why []string
	for _, repo := range m.Repositories {
		s, ok := sessions[repo]
		if !ok {
			why = append(why, fmt.Sprintf("repository %s is not in the archive", repo))
			continue
		}
		tf, role, err := s.Target(im.Ref)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: no target %s (%v)", repo, im.Ref, err))
			continue
		}
		if tf.Length != im.Size || !hashMatches(tf.Hashes, im) {
			why = append(why, fmt.Sprintf("%s: target %s (role %s) has length %d and hashes %s, the image is %s (%d bytes)", repo, im.Ref, role, tf.Length, hashList(tf.Hashes), im.Digest, im.Size))
			continue
		}
		vouches = append(vouches, Vouch{Repository: repo, Role: role.String(), Version: roleVersion(s, role.String())})
	}
	if len(vouches) < m.Threshold {
		why = append([]string{fmt.Sprintf("%d of %d required repositories agree", len(vouches), m.Threshold)}, why...)
		return nil, strings.Join(why, "; ")
	}
	for _, r := range m.Roles {
		repo := r.Repository
		if repo == "" {
			repo = m.Repositories[0]
		}
		s, ok := sessions[repo]
		if !ok {
			return nil, fmt.Sprintf("role %s: repository %s is not in the archive", r.Role, repo)
		}
		if err := s.RoleVouches(tufstore.RolePath(r.Role), im.Ref, want, r.MinSignatures); err != nil {
			return nil, fmt.Sprintf("%s: %v", repo, err)
		}
		vouches = append(vouches, Vouch{Repository: repo, Role: r.Role.String(), Version: roleVersion(s, r.Role.String())})
	}
	return vouches, ""
}

// siteTrusts reports whether the site relies on signed metadata at all.
func (in TrustInput) siteTrusts() bool {
	return len(in.State) > 0 || len(in.Pins) > 0 || len(in.PinCAs) > 0
}

// pinKey names an image by its reference and digest: a bundle's
// contentDigest vouches for that image under that name only.
func pinKey(ref string, d v1.Hash) string {
	if r, err := name.ParseReference(ref); err == nil {
		ref = r.Name()
	}
	return ref + "|" + d.String()
}

func hashMatches(h metadata.Hashes, im layout.Image) bool {
	got, ok := h[im.Digest.Algorithm]
	return ok && got.String() == im.Digest.Hex
}

func hashList(h metadata.Hashes) string {
	var out []string
	for alg, v := range h {
		out = append(out, alg+":"+v.String())
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func roleVersion(s *tufstore.Session, role string) int64 {
	for _, r := range s.Roles() {
		if r.Role == role {
			return r.Version
		}
	}
	return 0
}

func mustHex(h string) metadata.HexBytes {
	b, _ := hex.DecodeString(h) // a layout digest is checked hex
	return b
}
