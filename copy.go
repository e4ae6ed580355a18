package relocate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"golang.org/x/sync/errgroup"
)

// smallBlob is the size up to which a blob is read into memory and checked
// before it is sent: it then goes up in one PUT, and content that does not
// match never reaches the registry. Larger blobs stream, hashed on the way.
const smallBlob = 1 << 20

// copier is the archive side of an import: it reads content from the
// archive (at offsets from a file, or as a stream delivers it) and hands it
// to mirror's Pusher, which knows how it goes into a registry.
type copier struct {
	c    *mirror.Client
	p    *mirror.Pusher
	s    *source
	prog Progress
	jobs int

	needs map[v1.Hash][]name.Repository // blobs of images to push, and where
	skip  map[v1.Hash]bool              // blobs of images the destination holds whole

	mu  sync.Mutex
	bad map[v1.Hash]bool
}

func newCopier(c *mirror.Client, s *source, prog Progress, jobs int) *copier {
	return &copier{c: c, p: c.NewPusher(), s: s, prog: prog, jobs: max(jobs, 1),
		needs: map[v1.Hash][]name.Repository{}, skip: map[v1.Hash]bool{}, bad: map[v1.Hash]bool{}}
}

// findComplete asks, once an image, what its tag (or digest) resolves to.
// An image the destination holds whole (its digest there, every attachment
// discoverable) needs nothing checked or pushed: a registry accepts a
// manifest only once every blob and manifest it names is there, which
// makes re-importing an archive cheap.
func (cp *copier) findComplete(ctx context.Context, targets []*target) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(cp.jobs)
	for _, t := range targets {
		eg.Go(func() error {
			ref := t.tag
			if ref == "" {
				ref = t.image.Digest.String()
			}
			d, ok, err := cp.c.ManifestDigest(ctx, t.repo, ref)
			if err != nil || !ok {
				return err
			}
			t.current = &d
			if d == t.image.Digest {
				t.complete = cp.p.Discoverable(ctx, t.repo, t.closure.Attached) == nil
			}
			return nil
		})
	}
	return eg.Wait()
}

// pushBlobs makes every repository that needs a blob hold it: configs and
// other metadata from memory, then layers, in parallel from a plain file,
// else one by one as the stream delivers them. Every byte the archive
// carries is checked, pushed or not.
func (cp *copier) pushBlobs(ctx context.Context, targets []*target) error {
	var small []layout.Child
	for _, t := range targets {
		for _, b := range t.closure.Blobs {
			if t.complete {
				cp.skip[b.Digest] = true
				continue
			}
			if len(cp.needs[b.Digest]) == 0 && b.Kind.Small() {
				small = append(small, b)
			}
			if !containsRepo(cp.needs[b.Digest], t.repo) {
				cp.needs[b.Digest] = append(cp.needs[b.Digest], t.repo)
			}
		}
	}
	var total int64
	for d := range cp.needs {
		total += cp.s.Blobs[d].Size
	}
	cp.prog.Stage("import", total)
	defer cp.prog.Done()

	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(cp.jobs)
	for _, b := range small {
		eg.Go(func() error {
			data := cp.s.Small[b.Digest]
			cp.prog.Add(b.Size)
			return cp.push(gctx, mirror.Blob{Desc: b.Descriptor, Verified: true, Open: func() (io.Reader, error) { return bytes.NewReader(data), nil }})
		})
	}
	if !cp.s.R.RandomAccess() {
		if err := eg.Wait(); err != nil {
			return err
		}
		return cp.pushStream(ctx)
	}
	entries := make([]v1.Hash, 0, len(cp.s.Layers))
	for d := range cp.s.Layers {
		entries = append(entries, d)
	}
	sort.Slice(entries, func(i, j int) bool { return cp.s.Layers[entries[i]].Offset < cp.s.Layers[entries[j]].Offset })
	for _, d := range entries {
		e := cp.s.Layers[d]
		desc := v1.Descriptor{Digest: d, Size: e.Size}
		eg.Go(func() error {
			if cp.skip[d] && len(cp.needs[d]) == 0 {
				return nil // an image the destination holds whole
			}
			open := func() io.Reader { return cp.s.R.SectionReader(e) }
			if len(cp.needs[d]) == 0 {
				// Carried but needed by no image: checked all the same, as
				// a streamed import does.
				return cp.check(desc, open())
			}
			return cp.layer(gctx, desc, open, false)
		})
	}
	return eg.Wait()
}

// pushStream pushes the layers of a streamed archive as they come.
func (cp *copier) pushStream(ctx context.Context) error {
	for {
		_, b, err := cp.s.nextLayer()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		desc := v1.Descriptor{Digest: b.Digest, Size: b.Size}
		if len(cp.needs[b.Digest]) == 0 {
			if err := cp.check(desc, cp.s.R); err != nil {
				return err
			}
			continue
		}
		if err := cp.layer(ctx, desc, func() io.Reader { return cp.s.R }, true); err != nil {
			return err
		}
	}
}

// layer pushes one layer. A small one is read and checked first, then
// sent whole; a large one streams, hashed on the way. A stream can be read
// once: an upload that must start again (a lost session, a second
// repository that cannot mount) reads a copy kept on disk meanwhile, and a
// stream is read through even when nothing was uploaded, so that every
// byte is checked.
func (cp *copier) layer(ctx context.Context, desc v1.Descriptor, open func() io.Reader, streamed bool) error {
	if desc.Size <= smallBlob {
		var buf bytes.Buffer
		buf.Grow(int(desc.Size))
		if err := layout.CopyVerified(&buf, open(), desc, layout.BlobPath(desc.Digest)); err != nil {
			return cp.failed(desc.Digest, err)
		}
		cp.prog.Add(desc.Size)
		data := buf.Bytes()
		return cp.push(ctx, mirror.Blob{Desc: desc, Verified: true, Open: func() (io.Reader, error) { return bytes.NewReader(data), nil }})
	}
	src := func() (io.Reader, error) { return open(), nil }
	if streamed && (len(cp.needs[desc.Digest]) > 1 || cp.c.Policy().Retries > 0) {
		rp := mirror.NewReplay(open())
		defer rp.Close()
		src = rp.Open
	}
	prog := &highWater{p: cp.prog}
	read, err := cp.p.Blob(ctx, cp.needs[desc.Digest], mirror.Blob{Desc: desc, Open: func() (io.Reader, error) {
		r, err := src()
		if err != nil {
			return nil, err
		}
		return prog.reader(r), nil
	}})
	if err != nil {
		return cp.failed(desc.Digest, err)
	}
	if read {
		return nil
	}
	if !streamed {
		cp.prog.Add(desc.Size)
		return nil
	}
	r, err := src()
	if err != nil {
		return err
	}
	return cp.failed(desc.Digest, layout.CopyVerified(io.Discard, prog.reader(r), desc, layout.BlobPath(desc.Digest)))
}

// push sends a blob already checked to every repository that needs it.
func (cp *copier) push(ctx context.Context, b mirror.Blob) error {
	_, err := cp.p.Blob(ctx, cp.needs[b.Desc.Digest], b)
	return cp.failed(b.Desc.Digest, err)
}

// check reads a blob no image needs through, checking it against its digest.
func (cp *copier) check(desc v1.Descriptor, r io.Reader) error {
	return cp.failed(desc.Digest, layout.CopyVerified(io.Discard, r, desc, layout.BlobPath(desc.Digest)))
}

// failed records content that does not match its digest as a problem of
// the archive, and passes any other error on.
func (cp *copier) failed(d v1.Hash, err error) error {
	if !errors.As(err, new(*layout.IntegrityError)) {
		return err
	}
	cp.mu.Lock()
	cp.bad[d] = true
	cp.mu.Unlock()
	cp.s.ps.Add(layout.BlobPath(d), "%s", reason(err))
	return nil
}

// pushManifests pushes, for every image whose blobs all arrived intact,
// its manifests by digest: children before indexes, subjects before what
// is attached to them. An image's own manifest goes up with its tag later,
// in one request, unless something is attached to it. Nothing is tagged
// yet.
func (cp *copier) pushManifests(ctx context.Context, targets []*target, rep *ImportReport) error {
	for _, pr := range cp.s.ps.List() {
		if d, ok := layout.ParseBlobPath(pr.Subject); ok {
			cp.bad[d] = true // found while the archive's metadata was read
		}
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(cp.jobs)
	for i, t := range targets {
		if t.complete {
			rep.Images[i].Status = "unchanged"
			continue
		}
		eg.Go(func() error {
			if bad := cp.badBlobs(t); len(bad) > 0 {
				cp.s.ps.Add(t.image.Ref, "not imported: %d blob(s) failed verification (%s)", len(bad), strings.Join(bad, ", "))
				rep.Images[i].Status = "refused"
				return nil
			}
			t.indexed = map[v1.Hash]bool{}
			for _, m := range t.closure.Manifests {
				if m.Digest == t.image.Digest && t.tag != "" && len(t.closure.Attached) == 0 {
					continue
				}
				indexed, err := cp.p.Manifest(ctx, t.repo, m.Digest, string(m.MediaType), cp.s.Small[m.Digest])
				if err != nil {
					return err
				}
				t.indexed[m.Digest] = indexed
			}
			return nil
		})
	}
	return eg.Wait()
}

// pushTags makes, for every image pushed, its referrers discoverable, its
// cosign tags and finally its own tag point at it; then it checks that
// every attachment can be discovered from its subject.
func (cp *copier) pushTags(ctx context.Context, targets []*target, rep *ImportReport) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(cp.jobs)
	for i, t := range targets {
		if rep.Images[i].Status != "planned" {
			continue
		}
		eg.Go(func() error {
			status, err := cp.tagImage(ctx, t)
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

// tagImage lists one image's referrers, pushes its cosign tags and its own
// tag, and reports its status.
func (cp *copier) tagImage(ctx context.Context, t *target) (string, error) {
	for _, a := range t.closure.Attached {
		if err := cp.p.List(ctx, t.repo, a, t.indexed[a.Digest]); err != nil {
			return "", err
		}
	}
	for _, a := range t.closure.Attached {
		if a.Tag != "" {
			if _, err := cp.p.Tag(ctx, t.repo, a.Tag, a.Digest, a.MediaType, cp.s.Small[a.Digest], nil); err != nil {
				return "", err
			}
		}
	}
	status := "unchanged"
	if t.tag != "" {
		moved, err := cp.p.Tag(ctx, t.repo, t.tag, t.image.Digest, t.image.MediaType, cp.s.Small[t.image.Digest], t.current)
		if err != nil {
			return "", err
		}
		if moved {
			status = "pushed"
		}
	}
	return status, cp.p.Discoverable(ctx, t.repo, t.closure.Attached)
}

func (cp *copier) badBlobs(t *target) []string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []string
	for _, c := range append(append([]layout.Child{}, t.closure.Manifests...), t.closure.Blobs...) {
		if cp.bad[c.Digest] {
			out = append(out, c.Digest.String())
		}
	}
	return out
}

func containsRepo(rs []name.Repository, r name.Repository) bool {
	for _, x := range rs {
		if x.String() == r.String() {
			return true
		}
	}
	return false
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
