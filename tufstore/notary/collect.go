package notary

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Chain is a GUN's trust data as collected. File names are safe single path
// elements: "1.root.json".."N.root.json", "root.json" (current),
// "timestamp.json", "snapshot.json", "targets.json", and delegations with the
// role name path-escaped, e.g. "targets%2Freleases.json" (see RoleFile).
type Chain struct {
	GUN    string
	Server string
	Files  map[string][]byte
	Roles  []Role
}

// Role is one role's metadata: its version, expiry and file in the Chain.
type Role struct {
	Role    string    `json:"role"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
	File    string    `json:"file"`
}

// errHTTPNotFound marks a 404, which ends the root version walk.
var errHTTPNotFound = errors.New("not found")

// Collect fetches a GUN's trust data from a notary server (https://host:port):
// every root version (GET /v2/<gun>/_trust/tuf/<v>.root.json from 1 until a
// 404), the current root, the timestamp, then the snapshot, targets and every
// delegation reachable from targets, each by its checksum name
// <role>.<sha256hex>.json as the notary client fetches them and checked
// against its parent's length and hashes. Collect checks structure only;
// Verify checks signatures, expiry and trust. A nil client means
// http.DefaultClient.
func Collect(ctx context.Context, client *http.Client, server, gun string) (*Chain, error) {
	if err := validGUN(gun); err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("notary: server %q: want https://host:port", server)
	}
	if client == nil {
		client = http.DefaultClient
	}
	c := &collector{
		ctx:    ctx,
		client: client,
		base:   u.JoinPath("v2", gun, "_trust", "tuf").String() + "/",
		chain:  &Chain{GUN: gun, Server: u.String(), Files: map[string][]byte{}},
	}
	if err := c.collect(); err != nil {
		return nil, fmt.Errorf("notary: collect GUN %q from %s: %w", gun, u.Redacted(), err)
	}
	return c.chain, nil
}

type collector struct {
	ctx    context.Context
	client *http.Client
	base   string
	chain  *Chain
}

func (c *collector) collect() error {
	// Every root version, so the site can walk rotations from whatever root
	// it trusts.
	var last int64
	for v := int64(1); ; v++ {
		if v > maxRootVersions {
			return fmt.Errorf("more than %d root versions", maxRootVersions)
		}
		h, err := c.fetch(rootVersionFile(v), rootVersionFile(v), typeRoot, MaxRootSize)
		if errors.Is(err, errHTTPNotFound) {
			break
		}
		if err != nil {
			return err
		}
		if h.Version != v {
			return fmt.Errorf("%s has version %d", rootVersionFile(v), h.Version)
		}
		last = v
	}
	if last == 0 {
		return fmt.Errorf("no root: %w (is the GUN on this server?)", ErrMissing)
	}
	cur, err := c.fetch(fileRoot, fileRoot, typeRoot, MaxRootSize)
	if err != nil {
		return err
	}
	// A rotation published during the walk: fetch the versions it added.
	for v := last + 1; v <= cur.Version && v <= maxRootVersions; v++ {
		if _, err := c.fetch(rootVersionFile(v), rootVersionFile(v), typeRoot, MaxRootSize); err != nil {
			return err
		}
		last = v
	}
	if cur.Version != last {
		return fmt.Errorf("root.json has version %d, versioned roots end at %d", cur.Version, last)
	}
	c.addRole(roleRoot, cur, fileRoot)

	ts, err := c.fetch(fileTimestamp, fileTimestamp, typeTimestamp, MaxTimestampSize)
	if err != nil {
		return err
	}
	c.addRole(roleTimestamp, ts, fileTimestamp)
	var tsm metaSigned
	if err := json.Unmarshal(c.signedOf(fileTimestamp), &tsm); err != nil {
		return fmt.Errorf("timestamp.json: %w: %w", ErrMalformed, err)
	}
	snap, err := c.fetchByHash(roleSnapshot, fileSnapshot, typeSnapshot, tsm.Meta)
	if err != nil {
		return err
	}
	c.addRole(roleSnapshot, snap, fileSnapshot)
	var sm metaSigned
	if err := json.Unmarshal(c.signedOf(fileSnapshot), &sm); err != nil {
		return fmt.Errorf("snapshot.json: %w: %w", ErrMalformed, err)
	}

	// targets, then breadth-first every delegation it reaches that the
	// snapshot lists (a delegation without metadata has signed nothing yet).
	queue := []string{roleTargets}
	seen := map[string]bool{roleTargets: true}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		file := fileTargets
		if role != roleTargets {
			file = RoleFile(role)
			if _, ok := sm.Meta[role]; !ok {
				continue
			}
		}
		h, err := c.fetchByHash(role, file, typeTargets, sm.Meta)
		if err != nil {
			return err
		}
		c.addRole(role, h, file)
		var tg targetsSigned
		if err := json.Unmarshal(c.signedOf(file), &tg); err != nil {
			return fmt.Errorf("%s: %w: %w", file, ErrMalformed, err)
		}
		for _, d := range tg.Delegations.Roles {
			if !validDelegation(d.Name) || parentRole(d.Name) != role {
				return fmt.Errorf("%s: %w: delegation %q", file, ErrMalformed, d.Name)
			}
			if seen[d.Name] {
				continue
			}
			if len(seen) > maxDelegations {
				return fmt.Errorf("more than %d delegations", maxDelegations)
			}
			seen[d.Name] = true
			queue = append(queue, d.Name)
		}
	}
	return nil
}

// fetchByHash gets <role>.<sha256hex>.json as listed in meta and checks it.
// The check matters: notary-server looks such files up by checksum alone,
// whatever role name the request carries.
func (c *collector) fetchByHash(role, file, typ string, meta map[string]fileMeta) (header, error) {
	m, ok := meta[role]
	if !ok {
		return header{}, fmt.Errorf("%s: %w: parent lists no meta", role, ErrMissing)
	}
	sum, ok := m.Hashes["sha256"]
	if !ok || len(sum) != 32 {
		return header{}, fmt.Errorf("%s: %w: meta has no sha256", role, ErrMalformed)
	}
	if m.Length < 0 || m.Length > MaxMetaSize {
		return header{}, fmt.Errorf("%s: %w: meta length %d, limit %d", role, ErrTooLarge, m.Length, MaxMetaSize)
	}
	h, err := c.fetch(role+"."+hex.EncodeToString(sum)+".json", file, typ, int(m.Length))
	if err != nil {
		return header{}, err
	}
	if err := checkMeta(c.chain.Files[file], m); err != nil {
		return header{}, fmt.Errorf("%s: %w", role, err)
	}
	return h, nil
}

// fetch GETs a metadata file into the chain as file and returns its header.
func (c *collector) fetch(remote, file, typ string, limit int) (header, error) {
	data, err := c.get(remote, limit)
	if err != nil {
		return header{}, err
	}
	var sf struct {
		Signed header `json:"signed"`
	}
	if err := json.Unmarshal(data, &sf); err != nil {
		return header{}, fmt.Errorf("%s: %w: %w", remote, ErrMalformed, err)
	}
	if sf.Signed.Type != typ {
		return header{}, fmt.Errorf("%s: %w: _type %q, want %q", remote, ErrWrongType, sf.Signed.Type, typ)
	}
	c.chain.Files[file] = data
	return sf.Signed, nil
}

func (c *collector) get(name string, limit int) ([]byte, error) {
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, c.base+name, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %w", name, errHTTPNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s", name, resp.Status)
	case resp.ContentLength > int64(limit):
		return nil, fmt.Errorf("GET %s: %w: %d bytes, limit %d", name, ErrTooLarge, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", name, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("GET %s: %w: over %d bytes", name, ErrTooLarge, limit)
	}
	return data, nil
}

// signedOf returns the signed object of a collected file (already parsed
// once by fetch, so it is valid JSON).
func (c *collector) signedOf(file string) []byte {
	var sf signedFile
	_ = json.Unmarshal(c.chain.Files[file], &sf)
	return sf.Signed
}

func (c *collector) addRole(role string, h header, file string) {
	c.chain.Roles = append(c.chain.Roles, Role{Role: role, Version: h.Version, Expires: h.Expires, File: file})
}
