package relocate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/verify"
	"golang.org/x/sync/errgroup"
)

// ImportOptions says which archive to import and where.
type ImportOptions struct {
	Archive string    // path, or "-" for Stdin
	Stdin   io.Reader // where "-" comes from
	To      string    // HOST[:PORT][/PREFIX]
	DryRun  bool      // plan only: check the archive's metadata, push nothing
	Jobs    int
	// Trust holds the site's trust settings; the state is committed only
	// after everything was pushed.
	Trust TrustOptions
	// BeforeCommit, if set, runs after everything was pushed and before the
	// trusted state is committed; an error leaves the state as it was.
	BeforeCommit func() error
	Client       *mirror.Client
	Progress     Progress
	// Volumes finds and checks a volume set; see VolumeOptions.
	Volumes VolumeOptions
}

// ErrUsage marks a mistake in how an operation was asked for (exit 2).
var ErrUsage = errors.New("usage")

// ImportedImage is what happened to one image.
type ImportedImage struct {
	Ref    string  `json:"ref"`
	Target string  `json:"target"`
	Digest v1.Hash `json:"digest"`
	// Status: "pushed" (tag created or moved), "unchanged" (already there),
	// "planned" (dry run) or "refused".
	Status string `json:"status"`
}

// ImportReport says what an import did.
type ImportReport struct {
	Archive      string            `json:"archive"`
	To           string            `json:"to"`
	Verdict      string            `json:"verdict"` // "ok", "planned" or "refused"
	Images       []ImportedImage   `json:"images"`
	Attachments  int               `json:"attachments"`
	Mapping      map[string]string `json:"mapping"`
	BlobsPushed  int               `json:"blobsPushed"`
	BlobsMounted int               `json:"blobsMounted"`
	BlobsSkipped int               `json:"blobsSkipped"`
	BytesPushed  int64             `json:"bytesPushed"`
	Problems     []verify.Problem  `json:"problems,omitempty"`
	Trust        *TrustReport      `json:"trust,omitempty"`
	Bundles      []ImportedBundle  `json:"bundles,omitempty"`
	// Signatures is the verdict of the policy's signature rules.
	Signatures *verify.SignatureResult `json:"signatures,omitempty"`
}

// target is one image's destination and what it needs.
type target struct {
	image   layout.Image
	repo    name.Repository
	tag     string
	closure *layout.Closure
	// indexed are the manifests the registry listed as referrers itself.
	indexed map[v1.Hash]bool
}

// Import republishes an archive into a registry with every digest unchanged:
// the archive's metadata is checked before anything is pushed; then blobs
// (skipping what exists, mounting across repositories, checking digests as
// they stream), manifests by digest, and tags last, only for images whose
// every blob was verified, and only while the trust metadata is still
// fresh. A refusal is a *verify.Error; the report then says which images
// were refused and why. Every import that reaches a verdict is recorded in
// the audit log of the site's state when trust applies.
func Import(ctx context.Context, o ImportOptions) (_ *ImportReport, err error) {
	if !o.Trust.At.IsZero() {
		return nil, fmt.Errorf("%w: import judges expiry at the local clock; --at is for verify only", ErrUsage)
	}
	if o.Client == nil {
		o.Client = mirror.New()
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs()
	}
	to, err := checkTo(o.To)
	if err != nil {
		return nil, err
	}
	if err := o.Trust.checkSignatureOptions(); err != nil {
		return nil, err
	}
	prog := progressOr(o.Progress)
	rep := &ImportReport{Archive: o.Archive, To: o.To, Mapping: map[string]string{}}
	store, err := tufstore.Open(stateDir(o.Trust))
	if err != nil {
		return nil, err
	}
	s, err := openArchive(o.Archive, o.Stdin, o.Volumes)
	if err != nil {
		if !IsRefused(err) {
			return nil, err
		}
		rep.Verdict, rep.Problems = "refused", problemsOf(err)
		if relies, lerr := siteRelies(o.Trust, store); lerr == nil && relies && !o.DryRun {
			if aerr := audit(store, nil, o, "refused", nil, err); aerr != nil {
				return nil, aerr
			}
		}
		return rep, err
	}
	defer s.Close()
	verify.Names(s.toc, s.ps)
	closures := verify.Structure(s.toc, s.index, s.small, s.ps)
	verify.Bundles(s.toc, s.small, s.ps)
	var next map[string]*tufstore.RepoState
	applies, err := s.trustApplies(o.Trust, store)
	if err != nil {
		return nil, err
	}
	if applies {
		if err := store.Lock(); err != nil {
			return nil, err
		}
		defer store.Unlock()
		if rep.Trust, next, err = s.trust(o.Trust, store); err != nil {
			return nil, err
		}
	}
	// record writes the verdict to the audit log when trust was checked.
	record := func(verdict string, failure error) error {
		if !applies || o.DryRun {
			return nil
		}
		return audit(store, s, o, verdict, rep.Trust, failure)
	}
	refuse := func(err error) (*ImportReport, error) {
		if aerr := record("refused", err); aerr != nil {
			return nil, aerr
		}
		return refused(rep, s.ps), err
	}
	// Signatures are decided here, before anything is pushed.
	if rep.Signatures, err = s.signatures(ctx, o.Trust, rep.Trust); err != nil {
		return nil, err
	}
	if err := s.ps.Err(); err != nil {
		return refuse(err)
	}
	targets, err := plan(o.Client, to, s.toc.Images, closures)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		rep.Mapping[t.image.Ref] = dest(t)
		rep.Images = append(rep.Images, ImportedImage{Ref: t.image.Ref, Target: dest(t), Digest: t.image.Digest, Status: "planned"})
	}
	if o.DryRun {
		rep.Verdict = "planned"
		return rep, nil
	}
	// From here on the archive was verified: a registry failure is recorded.
	defer func() {
		if err != nil && !IsRefused(err) {
			if aerr := record("failed", err); aerr != nil {
				err = errors.Join(err, aerr)
			}
		}
	}()

	p := &pusher{c: o.Client, s: s, prog: prog, bad: map[v1.Hash]bool{}, api: map[string]bool{}, done: map[string]bool{}, repos: map[v1.Hash][]name.Repository{}}
	complete, err := p.complete(ctx, targets, o.Jobs)
	if err != nil {
		return nil, err
	}
	var configs []layout.Child
	p.skip = map[v1.Hash]bool{}
	for i, t := range targets {
		if !complete[i] {
			continue
		}
		for _, b := range t.closure.Blobs {
			p.skip[b.Digest] = true
		}
	}
	for i, t := range targets {
		if complete[i] {
			continue
		}
		for _, b := range t.closure.Blobs {
			if len(p.repos[b.Digest]) == 0 && b.Kind.Small() {
				configs = append(configs, b)
			}
			p.repos[b.Digest] = appendRepo(p.repos[b.Digest], t.repo)
		}
	}
	var total int64
	for d := range p.repos {
		total += s.blobs[d].Size
	}
	prog.Stage("import", total)
	volumesChecked := s.checkVolumes(ctx, o.Jobs)
	if err := p.pushBlobs(ctx, configs, o.Jobs); err != nil {
		prog.Done()
		return nil, err
	}
	prog.Done()
	// A volume that does not match its index is bad media: no manifest
	// is pushed from it.
	if err := volumesChecked(); IsRefused(err) {
		return refuse(err)
	} else if err != nil {
		return nil, err
	}
	for _, pr := range s.ps.List() {
		if d, ok := layout.ParseBlobPath(pr.Subject); ok {
			p.bad[d] = true
		}
	}
	if err := p.pushManifests(ctx, targets, complete, rep, o.Jobs); err != nil {
		return nil, err
	}
	// Nothing is tagged with metadata that expired during the import.
	if err := rep.Trust.checkFresh(o.Trust.now()); err != nil {
		for _, pr := range problemsOf(err) {
			s.ps.Add(pr.Subject, "%s; nothing was tagged", pr.Reason)
		}
		return refuse(s.ps.Err())
	}
	if err := p.pushTags(ctx, targets, rep, o.Jobs); err != nil {
		return nil, err
	}
	if rep.Bundles, err = p.pushBundles(ctx, targets, rep); err != nil {
		return nil, err
	}
	rep.BlobsPushed, rep.BlobsMounted, rep.BlobsSkipped, rep.BytesPushed = p.pushed, p.mounted, p.skipped, p.bytes
	if err := s.ps.Err(); err != nil {
		return refuse(err)
	}
	if applies {
		if err := rep.Trust.checkFresh(o.Trust.now()); err != nil {
			for _, pr := range problemsOf(err) {
				s.ps.Add(pr.Subject, "%s; the trusted state was not committed", pr.Reason)
			}
			return refuse(s.ps.Err())
		}
		if o.BeforeCommit != nil {
			if err := o.BeforeCommit(); err != nil {
				return nil, fmt.Errorf("before committing the trusted state: %w", err)
			}
		}
		if err := store.Commit(next); err != nil {
			return nil, fmt.Errorf("committing the trusted state in %s: %w", store.Dir(), err)
		}
		if err := record("ok", nil); err != nil {
			return nil, err
		}
	}
	if err := publishTUF(o.Trust, rep.Trust); err != nil {
		return nil, err
	}
	rep.Verdict = "ok"
	return rep, nil
}

// checkTo reads --to: a registry host and an optional repository prefix
// whose segments are names.
func checkTo(to string) (string, error) {
	to = strings.TrimSuffix(to, "/")
	if to == "" {
		return "", fmt.Errorf("%w: no destination: give --to HOST[:PORT][/PREFIX]", ErrUsage)
	}
	host, prefix, _ := strings.Cut(to, "/")
	if _, err := name.NewRegistry(host); err != nil || strings.Contains(host, "@") {
		return "", fmt.Errorf("%w: --to %s: %q is not a registry host", ErrUsage, to, host)
	}
	if prefix != "" {
		if err := layout.CheckRepositoryPath(prefix); err != nil {
			return "", fmt.Errorf("%w: --to %s: %v", ErrUsage, to, err)
		}
	}
	return to, nil
}

// siteRelies reports whether the site relies on trust at all, before the
// archive could be read.
func siteRelies(o TrustOptions, store *tufstore.Store) (bool, error) {
	if o.Policy != nil || len(o.Pins) > 0 || len(o.PinCAs) > 0 {
		return true, nil
	}
	state, err := store.Load()
	return len(state) > 0, err
}

func refused(rep *ImportReport, ps *verify.Problems) *ImportReport {
	rep.Verdict = "refused"
	rep.Problems = ps.List()
	return rep
}

func dest(t *target) string {
	if t.tag != "" {
		return t.repo.Tag(t.tag).String()
	}
	return t.repo.Digest(t.image.Digest.String()).String()
}

func appendRepo(rs []name.Repository, r name.Repository) []name.Repository {
	for _, x := range rs {
		if x.String() == r.String() {
			return rs
		}
	}
	return append(rs, r)
}

// ErrNameConflict is a destination that two images of an archive would
// share: the user must choose another --to or import them apart.
var ErrNameConflict = errors.New("name conflict")

// plan maps every image to its destination: HOST/path/name:tag becomes
// TO/path/name:tag. Two images may not land on one name.
func plan(c *mirror.Client, to string, images []layout.Image, closures map[string]*layout.Closure) ([]*target, error) {
	var out []*target
	landed := map[string]string{}
	for _, im := range images {
		if err := layout.CheckRef(im.Ref); err != nil {
			return nil, verify.Refuse(im.Ref, "refused reference: %v", err)
		}
		ref, err := name.ParseReference(im.Ref)
		if err != nil {
			return nil, verify.Refuse(im.Ref, "not a valid reference: %v", err)
		}
		repo, err := c.ParseRepository(to + "/" + ref.Context().RepositoryStr())
		if err != nil {
			return nil, fmt.Errorf("destination for %s: %w", im.Ref, err)
		}
		t := &target{image: im, repo: repo, tag: layout.TagOf(im.Ref), closure: closures[im.Ref]}
		if prev, ok := landed[dest(t)]; ok {
			return nil, fmt.Errorf("%w: %s and %s would both land on %s: import them separately or under different prefixes", ErrNameConflict, prev, im.Ref, dest(t))
		}
		landed[dest(t)] = im.Ref
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].image.Ref < out[j].image.Ref })
	return out, nil
}

// pusher puts blobs into their destination repositories.
type pusher struct {
	c     *mirror.Client
	s     *source
	prog  Progress
	repos map[v1.Hash][]name.Repository // every repository that needs a blob

	mu                       sync.Mutex
	bad                      map[v1.Hash]bool
	api                      map[string]bool  // registry → answers the referrers API
	done                     map[string]bool  // repository@digest of manifests pushed or present
	skip                     map[v1.Hash]bool // blobs of images the destination already holds whole
	fallbackMu               sync.Mutex
	pushed, mounted, skipped int
	bytes                    int64
}

// pushBlobs pushes configs from memory, then layers: in parallel from a
// plain file, else one by one as the stream delivers them.
func (p *pusher) pushBlobs(ctx context.Context, configs []layout.Child, jobs int) error {
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(jobs)
	for _, b := range configs {
		eg.Go(func() error {
			return p.ensure(gctx, b.Descriptor, func() io.Reader { return bytes.NewReader(p.s.small[b.Digest]) })
		})
	}
	if p.s.r.RandomAccess() {
		var layers []v1.Hash
		for d := range p.repos {
			if _, ok := p.s.layers[d]; ok {
				layers = append(layers, d)
			}
		}
		sort.Slice(layers, func(i, j int) bool { return p.s.layers[layers[i]].Offset < p.s.layers[layers[j]].Offset })
		// Layers the archive lists but no image needs are checked all the
		// same, as a streamed import does.
		for d, e := range p.s.layers {
			if _, needed := p.repos[d]; needed || p.skip[d] {
				continue
			}
			eg.Go(func() error {
				err := mirror.CopyVerified(io.Discard, p.s.r.SectionReader(e), v1.Descriptor{Digest: d, Size: e.Size}, e.Name)
				if IsRefused(err) {
					p.fail(d, e.Name, err)
					return nil
				}
				return err
			})
		}
		for _, d := range layers {
			e := p.s.layers[d]
			eg.Go(func() error {
				return p.ensure(gctx, v1.Descriptor{Digest: d, Size: e.Size}, func() io.Reader { return p.s.r.SectionReader(e) })
			})
		}
		return eg.Wait()
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	for {
		e, b, err := p.s.nextLayer()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(p.repos[b.Digest]) == 0 {
			// Carried but not needed by any image: still check it.
			if err := mirror.CopyVerified(io.Discard, p.s.r, v1.Descriptor{Digest: b.Digest, Size: b.Size}, e.Name); IsRefused(err) {
				p.s.ps.Add(e.Name, "%s", reason(err))
			} else if err != nil {
				return err
			}
			continue
		}
		if err := p.ensure(ctx, v1.Descriptor{Digest: b.Digest, Size: b.Size}, func() io.Reader { return p.s.r }); err != nil {
			return err
		}
	}
}

// ensure makes every repository that needs a blob hold it: skip where it
// exists, upload once (checking the digest as it streams), mount elsewhere.
// Content the stream carries is read through even when nothing is uploaded,
// so that every byte of a streamed archive is checked.
func (p *pusher) ensure(ctx context.Context, desc v1.Descriptor, open func() io.Reader) error {
	entry := layout.BlobPath(desc.Digest)
	var have string
	var missing []name.Repository
	for _, r := range p.repos[desc.Digest] {
		ok, err := p.c.BlobExists(ctx, r, desc.Digest)
		if err != nil {
			return err
		}
		if ok && have == "" {
			have = r.RepositoryStr()
		} else if !ok {
			missing = append(missing, r)
		}
	}
	// A stream can be read once: an upload that must start over (a
	// registry that lost the session, one that declines a cross-repository
	// mount) reads it again from a copy kept on disk meanwhile.
	streamed := !p.s.r.RandomAccess()
	src := func() (io.Reader, error) { return open(), nil }
	if streamed && len(missing) > 0 && (len(missing) > 1 || p.c.Policy().Retries > 0) {
		rp := mirror.NewReplay(open())
		defer rp.Close()
		src = rp.Open
	}
	prog := &highWater{p: p.prog}
	uploaded := false
	for _, r := range missing {
		up, err := p.c.PushBlob(ctx, r, desc, have, func() (io.Reader, error) {
			rd, err := src()
			if err != nil {
				return nil, err
			}
			return prog.reader(rd), nil
		})
		if errors.As(err, new(*mirror.IntegrityError)) {
			// Never retried; the upload session was cancelled.
			p.fail(desc.Digest, entry, err)
			return nil
		}
		if err != nil {
			return err
		}
		if have == "" {
			have = r.RepositoryStr()
		}
		p.count(up, desc.Size)
		uploaded = uploaded || up
	}
	if len(missing) == 0 {
		p.count(false, 0)
	}
	if !uploaded {
		if streamed {
			rd, err := src()
			if err != nil {
				return err
			}
			if err := mirror.CopyVerified(io.Discard, prog.reader(rd), desc, entry); IsRefused(err) {
				p.fail(desc.Digest, entry, err)
			} else if err != nil {
				return err
			}
		} else {
			p.prog.Add(desc.Size)
		}
	}
	return nil
}

// highWater counts each byte of a blob once in the progress, however many
// times an upload reads it.
type highWater struct {
	mu  sync.Mutex
	p   Progress
	max int64
}

func (h *highWater) reader(r io.Reader) io.Reader { return &hwReader{h: h, r: r} }

type hwReader struct {
	h   *highWater
	r   io.Reader
	off int64
}

func (x *hwReader) Read(b []byte) (int, error) {
	n, err := x.r.Read(b)
	x.off += int64(n)
	x.h.mu.Lock()
	if x.off > x.h.max {
		x.h.p.Add(x.off - x.h.max)
		x.h.max = x.off
	}
	x.h.mu.Unlock()
	return n, err
}

// Size passes on the size of a reader that knows it (a file section), so
// that an upload can announce its length; -1 if unknown.
func (x *hwReader) Size() int64 {
	if s, ok := x.r.(interface{ Size() int64 }); ok {
		return s.Size()
	}
	return -1
}

func (p *pusher) count(uploaded bool, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case uploaded:
		p.pushed++
		p.bytes += size
	case size > 0:
		p.mounted++
	default:
		p.skipped++
	}
}

func (p *pusher) fail(d v1.Hash, entry string, err error) {
	p.mu.Lock()
	p.bad[d] = true
	p.mu.Unlock()
	p.s.ps.Add(entry, "%s", reason(err))
}

// pushManifests pushes the manifests of every image whose blobs all
// arrived intact, by digest (children before indexes, subjects before what
// is attached to them). Nothing is tagged yet.
func (p *pusher) pushManifests(ctx context.Context, targets []*target, complete []bool, rep *ImportReport, jobs int) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(jobs)
	for i, t := range targets {
		if complete[i] {
			rep.Images[i].Status = "unchanged"
			continue
		}
		eg.Go(func() error {
			if bad := p.badBlobs(t); len(bad) > 0 {
				p.s.ps.Add(t.image.Ref, "not imported: %d blob(s) failed verification (%s)", len(bad), strings.Join(bad, ", "))
				rep.Images[i].Status = "refused"
				return nil
			}
			return p.pushDigests(ctx, t)
		})
	}
	return eg.Wait()
}

// pushTags makes, for every image pushed, its referrers discoverable, its
// cosign tags and finally its own tag point at it; then it checks that
// every attachment can be discovered from its subject.
func (p *pusher) pushTags(ctx context.Context, targets []*target, rep *ImportReport, jobs int) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(jobs)
	for i, t := range targets {
		if rep.Images[i].Status != "planned" {
			continue
		}
		eg.Go(func() error {
			status, err := p.tagImage(ctx, t)
			rep.Images[i].Status = status
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	for i, t := range targets {
		if rep.Images[i].Status != "refused" {
			rep.Attachments += len(t.closure.Attached)
		}
	}
	return nil
}

// complete finds the images the destination already holds whole: the tag
// (or digest) resolves to the image's digest, and every attachment can be
// found from its subject. A registry accepts a manifest only once every blob
// and manifest it names is there, so nothing of such an image needs
// checking or pushing, which makes re-importing an archive cheap.
func (p *pusher) complete(ctx context.Context, targets []*target, jobs int) ([]bool, error) {
	out := make([]bool, len(targets))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(jobs)
	for i, t := range targets {
		eg.Go(func() error {
			ref := t.tag
			if ref == "" {
				ref = t.image.Digest.String()
			}
			d, ok, err := p.c.ManifestDigest(ctx, t.repo, ref)
			if err != nil || !ok || d != t.image.Digest {
				return err
			}
			out[i] = p.discoverable(ctx, t) == nil
			return nil
		})
	}
	return out, eg.Wait()
}

// pushDigests pushes one image's manifests by digest.
func (p *pusher) pushDigests(ctx context.Context, t *target) error {
	t.indexed = map[v1.Hash]bool{}
	for _, m := range t.closure.Manifests {
		key := t.repo.String() + "@" + m.Digest.String()
		if p.isDone(key) {
			continue
		}
		_, ok, err := p.c.ManifestDigest(ctx, t.repo, m.Digest.String())
		if err != nil {
			return err
		}
		if !ok {
			if t.indexed[m.Digest], err = p.c.PutReferrer(ctx, t.repo, m.Digest, string(m.MediaType), p.s.small[m.Digest]); err != nil {
				return err
			}
		}
		p.markDone(key)
	}
	return nil
}

// tagImage lists one image's referrers, pushes its cosign tags and its own
// tag, and reports its status.
func (p *pusher) tagImage(ctx context.Context, t *target) (string, error) {
	for _, a := range t.closure.Attached {
		if err := p.list(ctx, t.repo, a, t.indexed[a.Digest]); err != nil {
			return "", err
		}
	}
	for _, a := range t.closure.Attached {
		if a.Tag != "" {
			if _, err := p.tag(ctx, t.repo, a.Tag, a.Digest, a.MediaType); err != nil {
				return "", err
			}
		}
	}
	status := "unchanged"
	if t.tag != "" {
		moved, err := p.tag(ctx, t.repo, t.tag, t.image.Digest, t.image.MediaType)
		if err != nil {
			return "", err
		}
		if moved {
			status = "pushed"
		}
	}
	return status, p.discoverable(ctx, t)
}

func (p *pusher) isDone(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done[key]
}

func (p *pusher) markDone(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done[key] = true
}

// tag points tag at d unless it already does, reporting whether it moved.
func (p *pusher) tag(ctx context.Context, repo name.Repository, tag string, d v1.Hash, mediaType string) (bool, error) {
	cur, ok, err := p.c.ManifestDigest(ctx, repo, tag)
	if err != nil || (ok && cur == d) {
		return false, err
	}
	return true, p.c.PutManifest(ctx, repo, tag, mediaType, p.s.small[d])
}

// list makes a referrer discoverable from its subject: registries with the
// referrers API index it themselves; for the others relocate adds it to the
// fallback tag's index, keeping the entries already there.
func (p *pusher) list(ctx context.Context, repo name.Repository, a layout.Attachment, indexed bool) error {
	if a.Kind != layout.AttachReferrer || indexed {
		return nil
	}
	reg := repo.RegistryStr()
	p.mu.Lock()
	api, known := p.api[reg]
	p.mu.Unlock()
	if !known {
		var err error
		if _, api, err = p.c.ReferrersAPI(ctx, repo, a.Subject); err != nil {
			return err
		}
		p.mu.Lock()
		p.api[reg] = api
		p.mu.Unlock()
	}
	if api {
		return nil
	}
	// Fallback indexes are read, extended and written back: one at a time.
	p.fallbackMu.Lock()
	defer p.fallbackMu.Unlock()
	return p.c.AddToFallbackIndex(ctx, repo, a.Subject, v1.Descriptor{
		MediaType: types.MediaType(a.MediaType), Size: a.Size, Digest: a.Digest,
		ArtifactType: a.ArtifactType, Annotations: a.Annotations,
	})
}

// discoverable checks that every attachment of an image can be found from
// its subject at the destination, as a verifier there would look for it.
func (p *pusher) discoverable(ctx context.Context, t *target) error {
	listed := map[v1.Hash]map[v1.Hash]bool{}
	for _, a := range t.closure.Attached {
		if a.Tag != "" {
			d, ok, err := p.c.ManifestDigest(ctx, t.repo, a.Tag)
			if err != nil {
				return err
			}
			if !ok || d != a.Digest {
				return fmt.Errorf("%s:%s: %s of %s not found after import", t.repo, a.Tag, a.Kind, a.Subject)
			}
			continue
		}
		if listed[a.Subject] == nil {
			descs, err := p.c.Referrers(ctx, t.repo, a.Subject)
			if err != nil {
				return err
			}
			listed[a.Subject] = map[v1.Hash]bool{}
			for _, d := range descs {
				listed[a.Subject][d.Digest] = true
			}
		}
		if !listed[a.Subject][a.Digest] {
			return fmt.Errorf("%s@%s: referrer %s (%s) is not listed for its subject after import", t.repo, a.Subject, a.Digest, a.ArtifactType)
		}
	}
	return nil
}

func (p *pusher) badBlobs(t *target) []string {
	var out []string
	for _, c := range append(append([]layout.Child{}, t.closure.Manifests...), t.closure.Blobs...) {
		if p.bad[c.Digest] {
			out = append(out, c.Digest.String())
		}
	}
	return out
}
