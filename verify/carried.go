package verify

import (
	"crypto/x509"
	"fmt"

	"github.com/relocate-dev/relocate/tufstore"
)

// carried is one trust repository an archive carries — a TUF repository or
// a Notary v1 GUN — with what the site trusts for it: the state earlier
// imports recorded, else a root (or, for a GUN, a CA) pinned now. There is
// no trust on first use. Both kinds go through open, then verify their
// chain their own way (tufstore's client workflow, tufstore/notary's).
type carried struct {
	kind      string // "TUF repository" or "Notary GUN"
	name      string // as the site pins it: --trust NAME=...
	stateName string // where the site keeps its state
	report    string // how reports and problems name it

	state  *tufstore.RepoState
	pin    []byte
	ca     *x509.CertPool
	known  bool // the state knows it
	pinned bool // a root (or CA) was given now
}

func tufCarried(name string) carried {
	return carried{kind: "TUF repository", name: name, stateName: name, report: name}
}

func notaryCarried(gun string) carried {
	return carried{kind: "Notary GUN", name: gun, stateName: NotaryStateName(gun), report: "notary:" + gun}
}

// open picks what the repository is verified from, and starts its outcome:
// the versions it had before, and the state it will have after.
func (c *carried) open(in TrustInput) (*RepoTrust, error) {
	c.state, c.known = in.State[c.stateName]
	c.pin, c.pinned = in.Pins[c.name]
	if ca, ok := in.PinCAs[c.name]; ok && c.kind == "Notary GUN" {
		c.ca, c.pinned = ca, true
	}
	rt := &RepoTrust{Name: c.report, StateName: c.stateName, Before: map[string]int64{}, graces: in.Policy.Graces()}
	switch {
	case c.known && c.pin != nil && !tufstore.SameRoot(c.pin, c.state.Pinned) && !tufstore.SameRoot(c.pin, c.state.Files["root.json"]):
		return nil, fmt.Errorf("the root given with --trust %s=... conflicts with the root this site pinned earlier; refusing (to start over, move the state directory aside)", c.name)
	case c.known:
		rt.Before = tufstore.Versions(c.state.Files)
		for role, v := range c.state.Delegated {
			rt.Before[role] = v
		}
		rt.NewState = &tufstore.RepoState{Pinned: c.state.Pinned}
	case c.pinned:
		rt.Pinned = true
		rt.NewState = &tufstore.RepoState{Pinned: c.pin}
	default:
		how := fmt.Sprintf("--trust %s=root.json", c.name)
		if c.kind == "Notary GUN" {
			how += fmt.Sprintf(" (or --trust-ca %s=ca.pem)", c.name)
		}
		return nil, fmt.Errorf("this site has not pinned a root for %s %q; obtain its root.json out of band and run again with %s", c.kind, c.name, how)
	}
	return rt, nil
}
