package notary

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Size and count limits: metadata from outside is bounded before it is
// parsed, so endless or bloated data is refused rather than buffered.
const (
	MaxRootSize      = 512 << 10
	MaxTimestampSize = 1 << 20
	MaxMetaSize      = 8 << 20 // snapshot, targets and each delegation

	maxRootVersions = 1024
	maxDelegations  = 1024
	maxSignatures   = 256
)

// Role names and their _type values.
const (
	roleRoot      = "root"
	roleTimestamp = "timestamp"
	roleSnapshot  = "snapshot"
	roleTargets   = "targets"
	roleReleases  = "targets/releases"

	typeRoot      = "Root"
	typeTimestamp = "Timestamp"
	typeSnapshot  = "Snapshot"
	typeTargets   = "Targets"
)

// File names in a Chain, a verify input and a state.
const (
	fileRoot      = "root.json"
	fileTimestamp = "timestamp.json"
	fileSnapshot  = "snapshot.json"
	fileTargets   = "targets.json"
)

// RoleFile is the file name a role's metadata has in a Chain and a state:
// the role path-escaped plus ".json", so "targets/releases" is
// "targets%2Freleases.json", a single safe path element.
func RoleFile(role string) string { return url.PathEscape(role) + ".json" }

func rootVersionFile(v int64) string { return strconv.FormatInt(v, 10) + ".root.json" }

// signedFile is a metadata file: the signed object and its signatures.
type signedFile struct {
	Signed     json.RawMessage `json:"signed"`
	Signatures []signature     `json:"signatures"`
}

type signature struct {
	KeyID  string `json:"keyid"`
	Method string `json:"method"`
	Sig    []byte `json:"sig"`
}

// header is what every role's signed object has.
type header struct {
	Type    string    `json:"_type"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
}

type roleSpec struct {
	KeyIDs    []string `json:"keyids"`
	Threshold int      `json:"threshold"`
}

type rootSigned struct {
	header
	Keys  map[string]tufKey   `json:"keys"`
	Roles map[string]roleSpec `json:"roles"`
}

// fileMeta is a parent's record of a file: base64 hashes and a length.
type fileMeta struct {
	Hashes map[string][]byte `json:"hashes"`
	Length int64             `json:"length"`
}

// metaSigned is timestamp and snapshot: meta keyed by role name (no ".json").
type metaSigned struct {
	header
	Meta map[string]fileMeta `json:"meta"`
}

type delegatedRole struct {
	Name      string   `json:"name"`
	KeyIDs    []string `json:"keyids"`
	Threshold int      `json:"threshold"`
	Paths     []string `json:"paths"`
}

type targetsSigned struct {
	header
	Targets     map[string]fileMeta `json:"targets"`
	Delegations struct {
		Keys  map[string]tufKey `json:"keys"`
		Roles []delegatedRole   `json:"roles"`
	} `json:"delegations"`
}

// envelope is a decoded file: canonical signed bytes, signatures, header.
type envelope struct {
	canonical []byte
	sigs      []signature
	header
}

// decodeEnvelope bounds, parses and canonicalizes a metadata file.
func decodeEnvelope(data []byte, limit int) (*envelope, error) {
	if len(data) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), limit)
	}
	var sf signedFile
	if err := json.Unmarshal(data, &sf); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(sf.Signed) == 0 || bytes.Equal(sf.Signed, []byte("null")) {
		return nil, fmt.Errorf("%w: no signed object", ErrMalformed)
	}
	if len(sf.Signatures) > maxSignatures {
		return nil, fmt.Errorf("%w: %d signatures, limit %d", ErrMalformed, len(sf.Signatures), maxSignatures)
	}
	canon, err := canonicalJSON(sf.Signed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	env := &envelope{canonical: canon, sigs: sf.Signatures}
	if err := json.Unmarshal(canon, &env.header); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if env.Version < 1 {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, env.Version)
	}
	if env.Expires.IsZero() {
		return nil, fmt.Errorf("%w: no expiry", ErrMalformed)
	}
	return env, nil
}

// decodeAs decodes the canonical signed object into a role's structure after
// checking its _type.
func (e *envelope) decodeAs(typ string, v any) error {
	if e.Type != typ {
		return fmt.Errorf("%w: _type %q, want %q", ErrWrongType, e.Type, typ)
	}
	if err := json.Unmarshal(e.canonical, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// checkMeta compares data to a parent's record: exact length, a SHA-256 that
// must be there, and a SHA-512 too when listed (Notary lists both).
func checkMeta(data []byte, m fileMeta) error {
	if int64(len(data)) != m.Length {
		return fmt.Errorf("%w: %d bytes, meta says %d", ErrHashMismatch, len(data), m.Length)
	}
	want, ok := m.Hashes["sha256"]
	if !ok || len(want) != sha256.Size {
		return fmt.Errorf("%w: meta has no sha256", ErrMalformed)
	}
	if got := sha256.Sum256(data); !bytes.Equal(got[:], want) {
		return fmt.Errorf("%w: sha256 differs", ErrHashMismatch)
	}
	if want, ok := m.Hashes["sha512"]; ok {
		if got := sha512.Sum512(data); !bytes.Equal(got[:], want) {
			return fmt.Errorf("%w: sha512 differs", ErrHashMismatch)
		}
	}
	return nil
}

var (
	gunRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*(/[A-Za-z0-9._:-]+)*$`)
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// validGUN accepts what a docker repository name can be (host[:port]/path),
// since the GUN becomes a URL path and certificate CN.
func validGUN(gun string) error {
	if len(gun) > 255 || !gunRE.MatchString(gun) {
		return fmt.Errorf("notary: invalid GUN %q", gun)
	}
	for _, s := range strings.Split(gun, "/") {
		if s == "." || s == ".." {
			return fmt.Errorf("notary: invalid GUN %q", gun)
		}
	}
	return nil
}

// validDelegation accepts targets/<a>[/<b>...] with plain segments, so a role
// name can never climb out of a URL path or a file name.
func validDelegation(name string) bool {
	rest, ok := strings.CutPrefix(name, roleTargets+"/")
	if !ok || len(name) > 255 {
		return false
	}
	for _, s := range strings.Split(rest, "/") {
		if !segmentRE.MatchString(s) || s == "." || s == ".." {
			return false
		}
	}
	return true
}

// parentRole is the role that delegates to name: its path parent.
func parentRole(name string) string {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ""
	}
	return name[:i]
}

// restrictPaths keeps the child's path prefixes that lie within one of the
// parent's: a delegation never widens what its parent may sign for.
func restrictPaths(child, parent []string) []string {
	var out []string
	for _, c := range child {
		for _, p := range parent {
			if strings.HasPrefix(c, p) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func pathAllowed(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
