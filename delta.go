package relocate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"golang.org/x/sync/errgroup"
)

// DeltaInfo describes a delta: the blobs it expects at the site and the
// earlier archives that carried them.
type DeltaInfo struct {
	Bases         []layout.Base     `json:"bases"`
	Expected      []layout.Expected `json:"expected"`
	ExpectedBytes int64             `json:"expectedBytes"`
}

func deltaInfo(toc *layout.TOC) *DeltaInfo {
	if !toc.IsDelta() {
		return nil
	}
	return &DeltaInfo{Bases: toc.Bases, Expected: toc.Expected, ExpectedBytes: toc.ExpectedBytes()}
}

// sinceBase is the earlier archive an export --since leaves out.
type sinceBase struct {
	toc    *layout.TOC
	digest v1.Hash // of its relocate-toc.json
	name   string
}

// readSince reads what --since names: an earlier archive, in one file or
// as a volume set (its index or one of its volumes, as verify finds them),
// or just its relocate-toc.json. Only the table of contents is used.
func readSince(path string) (*sinceBase, error) {
	bad := func(err error) error {
		if errors.Is(err, ErrUsage) {
			return fmt.Errorf("--since %s: %w", path, err)
		}
		return fmt.Errorf("%w: --since %s: %v", ErrUsage, path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, bad(err)
	}
	br := bufio.NewReader(f)
	first, _ := br.Peek(512)
	if t := bytes.TrimLeft(first, " \t\r\n"); len(t) > 0 && t[0] == '{' && !bytes.Contains(first, []byte(archive.VolumeIndexMediaType)) {
		defer f.Close()
		raw, err := io.ReadAll(io.LimitReader(br, layout.MaxTOCSize+1))
		if err != nil {
			return nil, bad(err)
		}
		if len(raw) > layout.MaxTOCSize {
			return nil, bad(fmt.Errorf("over the %d-byte limit of a table of contents", layout.MaxTOCSize))
		}
		toc, err := layout.ParseTOC(raw)
		if err != nil {
			return nil, bad(err)
		}
		return &sinceBase{toc: toc, digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(raw))}, name: filepath.Base(path)}, nil
	}
	f.Close()
	s, err := openArchive(path, nil, VolumeOptions{})
	if err != nil {
		return nil, bad(err)
	}
	defer s.Close()
	d, err := v1.NewHash(s.TOCDigest)
	if err != nil {
		return nil, bad(err)
	}
	name := filepath.Base(path)
	if s.vols != nil {
		name = s.vols.set.Index.Archive.Name // the archive, not the volume or index named
	}
	return &sinceBase{toc: s.TOC, digest: d, name: name}, nil
}

// checkExpected makes sure, before anything is pushed, that the
// destination holds every blob a delta expects, for every image that
// needs it and is not whole there already: it asks (HEAD) in the
// repositories that need the blob, then, for a blob none of them holds,
// in every other repository the import pushes to. With a pusher, a
// repository that lacks the blob gets it mounted from one that holds it;
// without (a dry run), nothing is pushed. A blob the destination does not
// hold is a refusal naming it and the archive that carried it.
func checkExpected(ctx context.Context, c *mirror.Client, p *mirror.Pusher, s *source, targets []*target, jobs int) error {
	if !s.TOC.IsDelta() {
		return nil
	}
	exp := map[v1.Hash]layout.Expected{}
	for _, e := range s.TOC.Expected {
		exp[e.Digest] = e
	}
	need := map[v1.Hash][]name.Repository{}
	var all []name.Repository
	for _, t := range targets {
		if !containsRepo(all, t.repo) {
			all = append(all, t.repo)
		}
		if t.complete || t.closure == nil {
			continue
		}
		for _, b := range t.closure.Blobs {
			if _, ok := exp[b.Digest]; ok && !containsRepo(need[b.Digest], t.repo) {
				need[b.Digest] = append(need[b.Digest], t.repo)
			}
		}
	}
	digests := make([]v1.Hash, 0, len(need))
	for d := range need {
		digests = append(digests, d)
	}
	sort.Slice(digests, func(i, j int) bool { return digests[i].String() < digests[j].String() })

	var mu sync.Mutex
	have := map[v1.Hash][]name.Repository{}
	ask := func(pairs map[v1.Hash][]name.Repository) error {
		eg, ctx := errgroup.WithContext(ctx)
		eg.SetLimit(max(jobs, 1))
		for d, repos := range pairs {
			for _, r := range repos {
				eg.Go(func() error {
					ok, err := c.BlobExists(ctx, r, d)
					if ok {
						mu.Lock()
						have[d] = append(have[d], r)
						mu.Unlock()
					}
					return err
				})
			}
		}
		return eg.Wait()
	}
	if err := ask(need); err != nil {
		return err
	}
	elsewhere := map[v1.Hash][]name.Repository{}
	for _, d := range digests {
		if len(have[d]) > 0 {
			continue
		}
		for _, r := range all {
			if !containsRepo(need[d], r) {
				elsewhere[d] = append(elsewhere[d], r)
			}
		}
	}
	if err := ask(elsewhere); err != nil {
		return err
	}
	missing := false
	for _, d := range digests {
		if len(have[d]) > 0 {
			continue
		}
		missing = true
		e := exp[d]
		s.ps.Add(d.String(), "expected at the site (%s, %d bytes, carried by %s) but no repository this import pushes to at %s holds it (%d asked); import %s there first",
			e.Kind, e.Size, s.TOC.BaseOf(e), all[0].RegistryStr(), len(all), s.TOC.BaseOf(e).Name)
	}
	if missing {
		return s.ps.Err()
	}
	if p == nil {
		return nil
	}
	for _, d := range digests {
		sort.Slice(have[d], func(i, j int) bool { return have[d][i].String() < have[d][j].String() })
		for _, r := range have[d] {
			p.Hold(r, d)
		}
		for _, r := range need[d] {
			if containsRepo(have[d], r) {
				continue
			}
			ok, err := p.Mount(ctx, r, d, have[d][0])
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s: the blob the delta expects is in %s, but the registry did not mount it into %s, and the delta does not carry it: import %s into %s first",
					d, have[d][0], r, s.TOC.BaseOf(exp[d]), r)
			}
		}
	}
	return nil
}

// refuseDelta ends an import whose expected blobs are missing: nothing was
// pushed, and no image is.
func refuseDelta(rep *ImportReport, err error, refuse func(error) (*ImportReport, error)) (*ImportReport, error) {
	if !IsRefused(err) {
		return nil, err
	}
	for i := range rep.Images {
		rep.Images[i].Status = "refused"
	}
	return refuse(err)
}
