package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/tufstore"
)

// Policy is the site's own rule for what may enter, read from a file the
// site owns (never from an archive). It extends a TAP 4 map file:
//
//	{
//	  "mapping": [
//	    {"paths": ["registry.example.com/prod/*"], "repositories": ["team", "security"],
//	     "threshold": 2, "terminating": true,
//	     "roles": [{"role": "ci", "minSignatures": 1}, {"role": "qa", "minSignatures": 2},
//	               {"repository": "team", "role": ["release", "release-eu"], "minSignatures": 1}]},
//	    {"paths": ["*"], "repositories": ["team"], "threshold": 1}
//	  ],
//	  "allowUnvouched": ["registry.example.com/tools/*"],
//	  "grace": {"timestamp": "48h", "snapshot": "48h"}
//	}
//
// For each image the first mapping whose paths match applies: its threshold
// of repositories must vouch for the image with the same hashes, and every
// listed role must vouch for them too with at least its number of distinct
// valid signatures (TAP 3-style multi-role agreement, which TUF alone does
// not express). A role is named by its delegation path from the top-level
// targets role: "qa" is the role targets delegates as qa, ["release",
// "release-eu"] the role release-eu that release delegates; a role of the
// same name delegated by anyone else never counts. A non-terminating
// mapping that is not satisfied lets the search go on to the next match.
// allowUnvouched admits only images that no mapping matched: an image a
// mapping matched and that failed it is refused. Grace extends expiry of
// timestamp and snapshot only; root and targets roles never get one.
// signatures requires cosign and notation signatures per path pattern, and
// sigstoreTrustedRoot names the TUF target keyless requirements trust
// (SignatureRule, in signatures.go).
type Policy struct {
	Mapping        []Mapping         `json:"mapping"`
	AllowUnvouched []string          `json:"allowUnvouched,omitempty"`
	Grace          map[string]string `json:"grace,omitempty"`
	// MinSecurityLevel is the lowest CNAB Security level (0–4, by number)
	// a bundle may have.
	MinSecurityLevel int `json:"cnabMinSecurityLevel,omitempty"`
	// Signatures are the signatures required per path pattern; see
	// SignatureRule (signatures.go).
	Signatures []SignatureRule `json:"signatures,omitempty"`
	// SigstoreTrustedRoot names the TUF target that keyless requirements
	// verify against (trusted_root.json of a carried TUF repository).
	SigstoreTrustedRoot *TUFTarget `json:"sigstoreTrustedRoot,omitempty"`

	grace map[string]time.Duration
	// dir resolves the file names requirements give (the policy's own
	// directory).
	dir string
}

// Mapping is one TAP 4 mapping entry with role requirements.
type Mapping struct {
	Paths        []string      `json:"paths"`
	Repositories []string      `json:"repositories"`
	Threshold    int           `json:"threshold"`
	Terminating  bool          `json:"terminating"`
	Roles        []RoleMinimum `json:"roles,omitempty"`
}

// RoleMinimum requires a delegated role to vouch with a number of signatures.
type RoleMinimum struct {
	Repository string `json:"repository,omitempty"` // default: the mapping's first repository
	// Role is the role's delegation path from the top-level targets role,
	// written "qa" (delegated by targets) or ["release", "release-eu"].
	Role          RolePath `json:"role"`
	MinSignatures int      `json:"minSignatures"`
}

// RolePath is a policy role: a delegation path from the top-level targets
// role, read from a JSON string (one hop) or an array of strings.
type RolePath tufstore.RolePath

// UnmarshalJSON reads "qa" or ["release", "release-eu"].
func (p *RolePath) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*p = RolePath{one}
		return nil
	}
	var path []string
	if err := json.Unmarshal(b, &path); err != nil {
		return fmt.Errorf("a role is a name or an array of names (its delegation path from targets)")
	}
	*p = path
	return nil
}

// MarshalJSON writes a one-hop path as a string.
func (p RolePath) MarshalJSON() ([]byte, error) {
	if len(p) == 1 {
		return json.Marshal(p[0])
	}
	return json.Marshal([]string(p))
}

func (p RolePath) String() string { return tufstore.RolePath(p).String() }

// LoadPolicy reads and checks a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, err
	}
	p.dir = filepath.Dir(path)
	if err := p.loadSignatureFiles(); err != nil {
		return nil, err
	}
	return p, nil
}

// ParsePolicy checks a policy document.
func ParsePolicy(b []byte) (*Policy, error) {
	var p Policy
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields() // a misspelt key must not silently weaken the policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	// The decoder stops after the first value: a second document (say, a
	// stricter rule appended to the file) would be silently ignored.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("policy: data after the JSON document")
	}
	p.grace = map[string]time.Duration{}
	for role, s := range p.Grace {
		if role != "timestamp" && role != "snapshot" {
			return nil, fmt.Errorf("policy: grace for %q: only timestamp and snapshot may have one", role)
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("policy: grace for %s: %q is not a duration", role, s)
		}
		p.grace[role] = d
	}
	for i, m := range p.Mapping {
		if len(m.Paths) == 0 || len(m.Repositories) == 0 {
			return nil, fmt.Errorf("policy: mapping %d needs paths and repositories", i)
		}
		if m.Threshold < 1 || m.Threshold > len(m.Repositories) {
			return nil, fmt.Errorf("policy: mapping %d: threshold %d with %d repositories", i, m.Threshold, len(m.Repositories))
		}
		for _, r := range m.Roles {
			if len(r.Role) == 0 || r.MinSignatures < 1 {
				return nil, fmt.Errorf("policy: mapping %d: a role needs a name and minSignatures ≥ 1", i)
			}
			for _, hop := range r.Role {
				if hop == "" || hop == "targets" || hop == "root" || hop == "snapshot" || hop == "timestamp" {
					return nil, fmt.Errorf("policy: mapping %d: role %s: %q is not a delegated role name", i, r.Role, hop)
				}
			}
		}
		for _, g := range m.Paths {
			if err := checkGlob(g); err != nil {
				return nil, fmt.Errorf("policy: mapping %d: %w", i, err)
			}
		}
	}
	for _, g := range p.AllowUnvouched {
		if err := checkGlob(g); err != nil {
			return nil, fmt.Errorf("policy: allowUnvouched: %w", err)
		}
		// An allow-list must not reach images a terminating mapping
		// protects: those are refused when the mapping fails, and a
		// policy that seems to say otherwise is a mistake.
		for i, m := range p.Mapping {
			if !m.Terminating {
				continue
			}
			for _, mp := range m.Paths {
				if globsOverlap(g, mp) {
					return nil, fmt.Errorf("policy: allowUnvouched %q overlaps %q of terminating mapping %d: an image a mapping matched is never admitted unvouched; narrow one of them", g, mp, i)
				}
			}
		}
	}
	if err := p.checkSignatures(); err != nil {
		return nil, err
	}
	return &p, nil
}

// checkGlob refuses a path pattern with an empty, "." or ".." segment in its
// repository: references are names, never paths.
func checkGlob(g string) error {
	if g == "" {
		return fmt.Errorf("an empty path pattern")
	}
	repo := g
	if i := strings.IndexAny(repo, ":@"); i >= 0 && !strings.Contains(repo[i:], "/") {
		repo = repo[:i] // a tag or digest part
	}
	for _, seg := range strings.Split(repo, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("path pattern %q: empty, '.' and '..' segments are refused", g)
		}
	}
	return nil
}

func (p *Policy) minLevel() int {
	if p == nil {
		return 0
	}
	return p.MinSecurityLevel
}

// GraceFor is the grace period for a role (zero for none).
func (p *Policy) GraceFor(role string) time.Duration {
	if p == nil {
		return 0
	}
	return p.grace[role]
}

// Graces is the policy's grace for timestamp and snapshot.
func (p *Policy) Graces() tufstore.Grace {
	return tufstore.Grace{Timestamp: p.GraceFor("timestamp"), Snapshot: p.GraceFor("snapshot")}
}

// mappingsFor returns the mappings whose paths match ref, in order.
func (p *Policy) mappingsFor(ref string) []Mapping {
	if p == nil {
		return nil
	}
	var out []Mapping
	for _, m := range p.Mapping {
		if matchAny(m.Paths, ref) {
			out = append(out, m)
		}
	}
	return out
}

func (p *Policy) allowsUnvouched(ref string) bool { return p != nil && matchAny(p.AllowUnvouched, ref) }

// matchAny matches a reference against patterns. A reference that is not a
// clean name matches nothing, so that no pattern can reach across a "..".
func matchAny(globs []string, s string) bool {
	if layout.CheckRef(s) != nil {
		return false
	}
	for _, g := range globs {
		if globRE(g).MatchString(s) {
			return true
		}
	}
	return false
}

// globRE turns a TAP 4 path pattern into a regexp (layout.GlobRegexp).
func globRE(g string) *regexp.Regexp { return layout.GlobRegexp(g) }

// globsOverlap reports whether some string matches both patterns ("*" any
// run, "?" one character).
func globsOverlap(a, b string) bool {
	x, y := []rune(a), []rune(b)
	memo := map[[2]int]bool{}
	seen := map[[2]int]bool{}
	var rec func(i, j int) bool
	rec = func(i, j int) bool {
		k := [2]int{i, j}
		if seen[k] {
			return memo[k]
		}
		seen[k] = true
		var r bool
		switch {
		case i == len(x) && j == len(y):
			r = true
		case i < len(x) && x[i] == '*':
			// The star matches nothing more, or swallows y's next token.
			r = rec(i+1, j) || (j < len(y) && rec(i, j+1))
		case j < len(y) && y[j] == '*':
			r = rec(i, j+1) || (i < len(x) && rec(i+1, j))
		case i == len(x) || j == len(y):
			r = false
		default:
			r = (x[i] == y[j] || x[i] == '?' || y[j] == '?') && rec(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return rec(0, 0)
}
