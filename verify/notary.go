package verify

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/tufstore/notary"
)

// NotaryStateName is the name under which a GUN's trusted state is kept:
// readable, safe as a file name, and unique.
func NotaryStateName(gun string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, gun)
	sum := sha256.Sum256([]byte(gun))
	if len(safe) > 80 {
		safe = safe[:80]
	}
	return "notary." + safe + "." + hex.EncodeToString(sum[:4])
}

// notaryRepo verifies one GUN's trust data (Notary v1) from the site's state
// or from a root or CA pinned now, with the policy's grace for timestamp
// and snapshot only.
func notaryRepo(gun string, files map[string][]byte, in TrustInput) (*notary.Result, *RepoTrust, error) {
	c := notaryCarried(gun)
	rt, err := c.open(in)
	if err != nil {
		return nil, nil, err
	}
	trusted := notary.Trusted{Root: c.pin, RootCA: c.ca}
	if c.known {
		trusted = notary.Trusted{Root: c.state.Pinned, State: c.state.Files, RootCA: c.ca}
	}
	gTS, gSnap := in.Policy.GraceFor("timestamp"), in.Policy.GraceFor("snapshot")
	res, err := notary.VerifyWithGrace(gun, files, trusted, in.Now, max(gTS, gSnap))
	if err != nil {
		return nil, nil, err
	}
	for _, g := range []struct {
		role    string
		grace   time.Duration
		expired func(time.Time) bool
	}{{"timestamp", gTS, res.TimestampExpired}, {"snapshot", gSnap, res.SnapshotExpired}} {
		if !g.expired(in.Now) {
			continue
		}
		if g.expired(in.Now.Add(-g.grace)) {
			return nil, nil, fmt.Errorf("%s is expired, beyond the policy's grace", g.role)
		}
		rt.Grace = append(rt.Grace, fmt.Sprintf("%s expired, accepted within the policy's %s grace", g.role, g.grace))
	}
	for _, r := range res.Roles() {
		rt.Roles = append(rt.Roles, tufstore.Role{Role: r.Role, Version: r.Version, Expires: r.Expires})
	}
	rt.NewState.Files = res.NewState()
	rt.After = tufstore.Versions(rt.NewState.Files)
	return res, rt, nil
}

// notaryVouch binds an image to its GUN's trust data as docker does: the
// image's repository is the GUN, its tag the target name (targets/releases
// first), whose sha256 and length must be the manifest's digest and size.
// found is false when the archive carries no trust data for the image's GUN.
func notaryVouch(im layout.Image, results map[string]*notary.Result) (v *Vouch, found bool, why string) {
	tag := layout.TagOf(im.Ref)
	gun := strings.TrimSuffix(strings.SplitN(im.Ref, "@", 2)[0], ":"+tag)
	res, ok := results[gun]
	if !ok {
		return nil, false, ""
	}
	if tag == "" {
		return nil, true, fmt.Sprintf("notary:%s: the image has no tag to look up", gun)
	}
	sum, length, role, err := res.Target(tag)
	if err != nil {
		return nil, true, fmt.Sprintf("notary:%s: %v", gun, err)
	}
	want, _ := hex.DecodeString(im.Digest.Hex)
	if im.Digest.Algorithm != "sha256" || !bytes.Equal(sum, want) || length != im.Size {
		return nil, true, fmt.Sprintf("notary:%s: tag %s (role %s) is sha256:%x, %d bytes; the image is %s, %d bytes", gun, tag, role, sum, length, im.Digest, im.Size)
	}
	var version int64
	for _, r := range res.Roles() {
		if r.Role == role {
			version = r.Version
		}
	}
	return &Vouch{Repository: "notary:" + gun, Role: role, Version: version}, true, ""
}

// ParseCAs reads a PEM file of CA certificates for --trust-ca.
func ParseCAs(pem []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	return p, nil
}
