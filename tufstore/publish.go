package tufstore

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/relocate-dev/relocate/internal/atomicfile"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/sys/unix"
)

// Published is a verified repository laid out as TUF clients fetch it
// (go-tuf, python-tuf, cosign initialize --mirror): N.root.json for every
// root, timestamp.json, the snapshot, targets and delegated roles by their
// consistent-snapshot names when the root asks for them, and carried target
// files under targets/ (<hash>.<name> with consistent snapshots).
type Published struct {
	Name string
	// Files maps a slash-separated path inside the directory to content.
	Files map[string][]byte
	// Versions of root, timestamp, snapshot and targets.
	Versions map[string]int64
	// Targets are the target files published.
	Targets []string
	// Notes say what could not be published (a delegated role the archive
	// does not carry or that does not verify): clients searching it fail
	// there as they would at the origin.
	Notes []string
}

// Publish lays out the session's verified metadata and carried targets for
// clients. Roots older than the trusted one are published as carried: a
// client verifies them from its own pinned root. Every delegated role
// reachable from targets is verified (with the keys of the delegation that
// leads to it) and published; every carried target is checked through the
// delegation walk.
func (s *Session) Publish() (*Published, error) {
	tm := s.up.GetTrustedMetadataSet()
	consistent := tm.Root.Signed.ConsistentSnapshot
	p := &Published{Name: s.Name, Files: map[string][]byte{}, Versions: map[string]int64{}}
	local := func(role string) ([]byte, error) {
		// go-tuf persisted exactly the bytes it verified.
		return os.ReadFile(filepath.Join(s.dir, role+".json"))
	}
	rootV := tm.Root.Signed.Version
	for v := int64(1); v < rootV; v++ {
		n := fmt.Sprintf("%d.root.json", v)
		if b, ok := s.files[n]; ok {
			p.Files[n] = b
		}
	}
	b, err := local(metadata.ROOT)
	if err != nil {
		return nil, err
	}
	p.Files[fmt.Sprintf("%d.root.json", rootV)] = b
	if b, err = local(metadata.TIMESTAMP); err != nil {
		return nil, err
	}
	p.Files["timestamp.json"] = b
	for _, role := range []string{metadata.SNAPSHOT, metadata.TARGETS} {
		if b, err = local(role); err != nil {
			return nil, err
		}
		v := tm.Snapshot.Signed.Version
		if role == metadata.TARGETS {
			v = tm.Targets[metadata.TARGETS].Signed.Version
		}
		p.Files[fileName(role, v, consistent)] = b
	}
	p.Versions = map[string]int64{metadata.ROOT: rootV, metadata.TIMESTAMP: tm.Timestamp.Signed.Version,
		metadata.SNAPSHOT: tm.Snapshot.Signed.Version, metadata.TARGETS: tm.Targets[metadata.TARGETS].Signed.Version}

	// Delegated roles, breadth first; a role is one file whatever path
	// reaches it, but is verified in the context of the first path.
	type visit struct {
		path   RolePath
		parent *metadata.Metadata[metadata.TargetsType]
	}
	queue := []visit{}
	top := tm.Targets[metadata.TARGETS]
	if top.Signed.Delegations != nil {
		for _, r := range top.Signed.Delegations.Roles {
			queue = append(queue, visit{RolePath{r.Name}, top})
		}
	}
	done := map[string]bool{}
	for len(queue) > 0 && len(done) < maxDelegations {
		v := queue[0]
		queue = queue[1:]
		role := v.path[len(v.path)-1]
		if done[role] {
			continue
		}
		done[role] = true
		md, err := s.delegate(v.parent, v.path)
		if err != nil {
			p.Notes = append(p.Notes, fmt.Sprintf("delegated role %s not published: %v", v.path, err))
			continue
		}
		p.Files[s.delegated[v.path.key()].file] = s.files[s.delegated[v.path.key()].file]
		if md.Signed.Delegations != nil {
			for _, r := range md.Signed.Delegations.Roles {
				queue = append(queue, visit{append(append(RolePath{}, v.path...), r.Name), md})
			}
		}
	}
	for _, n := range CarriedTargets(s.files) {
		data := s.File(n)
		tf, _, err := s.VerifyTarget(n, data)
		if err != nil {
			return nil, err
		}
		for _, name := range targetPaths(n, tf, consistent) {
			p.Files[name] = data
		}
		p.Targets = append(p.Targets, n)
	}
	return p, nil
}

// targetPaths is where clients fetch a target: targets/<dir>/<hash>.<base>
// for each hash listed (go-tuf picks any one), or targets/<name>.
func targetPaths(name string, tf *metadata.TargetFiles, consistent bool) []string {
	if !consistent {
		return []string{"targets/" + name}
	}
	dir, base := path.Split(name)
	var out []string
	for _, h := range tf.Hashes {
		out = append(out, "targets/"+dir+hex.EncodeToString(h)+"."+base)
	}
	sort.Strings(out)
	return out
}

// PublishedVersions reads the versions of the repository published in dir:
// the newest N.root.json and timestamp.json's version. ok is false when
// dir holds no published repository.
func PublishedVersions(dir string) (root, timestamp int64, ok bool, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	for _, e := range ents {
		if v, found := strings.CutSuffix(e.Name(), ".root.json"); found {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > root {
				root = n
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "timestamp.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return root, 0, root > 0, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	var ts struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &ts); err != nil {
		return 0, 0, false, fmt.Errorf("%s: %w", filepath.Join(dir, "timestamp.json"), err)
	}
	return root, ts.Signed.Version, true, nil
}

// Write puts the published repository in dir atomically: a complete new
// directory is written and synced beside dir, then exchanged with dir in
// one rename (renameat2 RENAME_EXCHANGE), so a client sees the old
// repository or the new one, never a mix. Where the file system cannot
// exchange, the old directory is moved aside first.
func (p *Published) Write(dir string) error {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(p.Files))
	dirs := map[string]bool{tmp: true}
	for _, n := range names {
		if !fs.ValidPath(n) {
			return fmt.Errorf("publishing %s: bad file name %q", p.Name, n)
		}
		f := filepath.Join(tmp, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		for d := filepath.Dir(f); len(d) >= len(tmp); d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := atomicfile.WriteFile(f, p.Files[n], 0o644); err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return err
		}
		return syncDir(parent)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); err != nil {
		// No exchange here (an old kernel or file system): move the old
		// directory aside, then the new one in; a crash between the two
		// renames leaves the old one beside, under the temporary name.
		old := tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return err
		}
		if err := os.Rename(tmp, dir); err != nil {
			os.Rename(old, dir)
			return err
		}
		defer os.RemoveAll(old)
	}
	// tmp now holds the previous repository; the deferred RemoveAll drops it.
	return syncDir(parent)
}

func syncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
