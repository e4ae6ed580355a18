package relocate

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/verify"
)

// TrustOptions are the site's trust settings, shared by Verify and Import.
// None of them comes from the archive.
type TrustOptions struct {
	// StateDir holds the site's trusted TUF state (DefaultStateDir if empty).
	StateDir string
	// Pins are roots obtained out of band, for repositories (and Notary
	// GUNs) the state does not know yet (never trust on first use).
	Pins map[string][]byte
	// PinCAs are PEM certificates a Notary GUN's root certificates must chain to.
	PinCAs map[string][]byte
	// Policy is the site's policy file, if any.
	Policy *verify.Policy
	// PolicyFile names the policy in the audit log.
	PolicyFile string
	// At checks the archive as of a past or future moment instead of the
	// local clock: for forensics, and for real metadata that has expired.
	// Verify only; Import refuses it, as it would commit stale trust.
	At time.Time
	// Clock is the local clock (time.Now if nil). An import reads it when
	// it starts, before it tags anything and before it commits the state.
	Clock func() time.Time
	// WarnExpiry warns about metadata that expires within this long.
	WarnExpiry time.Duration
	// RunInspections lets in-toto inspections run: they are commands the
	// layout names, so they run only when asked, in a temporary directory.
	RunInspections bool
	// RequireSignatures: every image must have a valid signature under the
	// policy's signature rules (a usage error without such rules).
	RequireSignatures bool
	// SigstoreTrustedRoot is a Sigstore trusted_root.json the site gives
	// (--sigstore-trusted-root) for keyless requirements: it takes the place
	// of the TUF target the policy names (sigstoreTrustedRoot).
	SigstoreTrustedRoot     []byte
	SigstoreTrustedRootFile string
	// PublishTUF maps TUF repository names to directories where an import
	// writes the verified repository for TUF clients at the site.
	PublishTUF map[string]string
}

// DefaultStateDir is $XDG_DATA_HOME/relocate, else ~/.local/share/relocate.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "relocate")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "relocate")
	}
	return ".relocate-state"
}

func (o TrustOptions) now() time.Time {
	if o.Clock != nil {
		return o.Clock()
	}
	return time.Now()
}

// checkFresh refuses trust whose metadata expired since it was checked.
func (r *TrustReport) checkFresh(t time.Time) error {
	if r == nil {
		return nil
	}
	return r.TrustResult.CheckFresh(t)
}

// TrustReport is the trust part of a verify or import report.
type TrustReport struct {
	*verify.TrustResult
	StateDir string `json:"stateDir"`
	// CheckedAt is the moment expiry was judged at; AsOf is set when it
	// was not the local clock (verify --at).
	CheckedAt time.Time  `json:"checkedAt"`
	AsOf      bool       `json:"asOf,omitempty"`
	Expires   *time.Time `json:"expires,omitempty"`
	Warnings  []string   `json:"warnings,omitempty"`
	// Published says what import --publish-tuf wrote (publish.go).
	Published []PublishedRepo `json:"published,omitempty"`
}

// applies reports whether the archive or the site asks for trust checks.
// A site that has pinned or recorded any trust metadata checks every
// archive, so that one stripped of its metadata is not simply let through.
func (s *source) trustApplies(o TrustOptions, store *tufstore.Store) (bool, error) {
	if len(s.TOC.TUF) > 0 || len(s.TOC.Notary) > 0 || o.Policy != nil || len(o.Pins) > 0 || len(o.PinCAs) > 0 || len(o.PublishTUF) > 0 {
		return true, nil
	}
	state, err := store.Load()
	if err != nil {
		return false, fmt.Errorf("reading the trusted state in %s: %w", store.Dir(), err)
	}
	return len(state) > 0, nil
}

// trust verifies the archive's TUF chains and binds its images, recording
// problems in s.ps. It reads the state; it never writes it.
func (s *source) trust(o TrustOptions, store *tufstore.Store) (*TrustReport, map[string]*tufstore.RepoState, error) {
	now, asOf := o.now(), !o.At.IsZero()
	if asOf {
		now = o.At
	}
	state, err := store.Load()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the trusted state in %s: %w", store.Dir(), err)
	}
	repos := s.unpackTrust("tuf:", layout.TUFArtifactType, s.TOC.TUF)
	notaries := s.unpackTrust("notary:", layout.NotaryArtifactType, s.TOC.Notary)
	cas := map[string]*x509.CertPool{}
	for gun, pem := range o.PinCAs {
		pool, err := verify.ParseCAs(pem)
		if err != nil {
			return nil, nil, fmt.Errorf("--trust-ca %s: %w", gun, err)
		}
		cas[gun] = pool
	}
	res := verify.Trust(verify.TrustInput{Repos: repos, Notary: notaries, State: state, Pins: o.Pins, PinCAs: cas, Policy: o.Policy, Now: now,
		Images: s.images(), Bundles: s.bundles(), RunInspections: o.RunInspections, Publish: o.publishNames()}, s.ps)
	rep := &TrustReport{TrustResult: res, StateDir: store.Dir(), CheckedAt: now, AsOf: asOf}
	if asOf {
		rep.Warnings = append(rep.Warnings, "trust checked as of "+now.UTC().Format(time.RFC3339)+" (--at), not at the local clock")
	}
	var roles []layout.TUFRepo
	for _, rt := range res.Repositories {
		r := layout.TUFRepo{Name: rt.Name}
		for _, ro := range rt.Roles {
			r.Roles = append(r.Roles, layout.TUFRole{Role: ro.Role, Version: ro.Version, Expires: ro.Expires})
		}
		roles = append(roles, r)
	}
	rep.Expires, rep.Warnings = expiry(roles, o.WarnExpiry, now, nil)
	for _, rt := range res.Repositories {
		for _, g := range rt.Grace {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("TUF %s: %s", rt.Name, g))
		}
	}
	next := map[string]*tufstore.RepoState{}
	for n, st := range state {
		next[n] = st
	}
	for _, rt := range res.Repositories {
		if rt.NewState != nil && rt.NewState.Files != nil {
			next[rt.StateName] = rt.NewState
		}
	}
	return rep, next, nil
}

// unpackTrust reads the metadata files of the TUF repositories or Notary
// GUNs the archive carries, by name.
func (s *source) unpackTrust(kind, artifactType string, list []layout.TUFRepo) map[string]map[string][]byte {
	out := map[string]map[string][]byte{}
	for _, r := range list {
		files, err := layout.UnpackTrust(artifactType, r, func(h v1.Hash) ([]byte, bool) { b, ok := s.Small[h]; return b, ok })
		if err != nil {
			s.ps.Add(kind+r.Name, "%v", err)
			continue
		}
		out[r.Name] = files
	}
	return out
}

// audit appends the record of an import that reached a verdict: ok,
// refused, or failed at the registry after it was verified.
func audit(store *tufstore.Store, s *source, o ImportOptions, verdict string, tr *TrustReport, failure error) error {
	rec := tufstore.AuditRecord{Time: time.Now().UTC(), Operation: "import", Archive: o.Archive, To: o.To, Verdict: verdict, Policy: o.Trust.PolicyFile}
	if s != nil {
		rec.ArchiveDigest = s.TOCDigest
		rec.Excluded = s.excluded()
		for _, p := range s.ps.List() {
			rec.Reasons = append(rec.Reasons, p.String())
		}
	}
	if failure != nil {
		rec.Error = failure.Error()
	}
	if tr != nil && tr.TrustResult != nil {
		rec.VerifiedAt = tr.CheckedAt.UTC()
		rec.Repositories = map[string]tufstore.AuditVersions{}
		for _, rt := range tr.Repositories {
			rec.Repositories[rt.Name] = tufstore.AuditVersions{Before: rt.Before, After: rt.After}
			rec.Grace = append(rec.Grace, rt.Grace...)
		}
		for _, im := range tr.Images {
			if im.Unvouched {
				rec.Unvouched = append(rec.Unvouched, im.Ref)
			}
		}
	}
	if err := store.Audit(rec); err != nil {
		return fmt.Errorf("writing the audit log in %s: %w", store.Dir(), err)
	}
	return nil
}

func stateDir(o TrustOptions) string {
	if o.StateDir != "" {
		return o.StateDir
	}
	return DefaultStateDir()
}
