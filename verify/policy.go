package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

// Policy is the site's own rule for what may enter, read from a file the
// site owns (never from an archive). It extends a TAP 4 map file:
//
//	{
//	  "mapping": [
//	    {"paths": ["registry.example.com/prod/*"], "repositories": ["team", "security"],
//	     "threshold": 2, "terminating": true,
//	     "roles": [{"role": "ci", "minSignatures": 1}, {"role": "qa", "minSignatures": 2},
//	               {"repository": "team", "role": "release", "minSignatures": 1}]},
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
// not express). A non-terminating mapping that is not satisfied lets the
// search go on to the next match. Grace extends expiry of timestamp and
// snapshot only; root and targets roles never get one.
type Policy struct {
	Mapping        []Mapping         `json:"mapping"`
	AllowUnvouched []string          `json:"allowUnvouched,omitempty"`
	Grace          map[string]string `json:"grace,omitempty"`
	// MinSecurityLevel is the lowest CNAB Security level (0–4, by number)
	// a bundle may have.
	MinSecurityLevel int `json:"cnabMinSecurityLevel,omitempty"`

	grace map[string]time.Duration
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
	Repository    string `json:"repository,omitempty"` // default: the mapping's first repository
	Role          string `json:"role"`
	MinSignatures int    `json:"minSignatures"`
}

// LoadPolicy reads and checks a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePolicy(b)
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
			if r.Role == "" || r.MinSignatures < 1 {
				return nil, fmt.Errorf("policy: mapping %d: a role needs a name and minSignatures ≥ 1", i)
			}
		}
	}
	return &p, nil
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

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if globRE(g).MatchString(s) {
			return true
		}
	}
	return false
}

// globRE turns a TAP 4 path pattern into a regexp: "*" matches any run of
// characters, "/" and ":" included, "?" one character.
func globRE(g string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range g {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
