package relocate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/internal/atomicfile"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/verify"
)

// ImportOptions says which archive to import and where.
type ImportOptions struct {
	Archive string    // path, or "-" for Stdin
	Stdin   io.Reader // where "-" comes from
	To      string    // HOST[:PORT][/PREFIX]; may be empty when Map places every image
	DryRun  bool      // plan only: check the archive's metadata, push nothing
	Jobs    int
	// Trust holds the site's trust settings; the state is committed only
	// after everything was pushed.
	Trust TrustOptions
	// MappingFile, if set, receives a JSON object original reference →
	// relocated reference once the import succeeded.
	MappingFile string
	// RelocationMappingDir, if set, receives each imported CNAB bundle's
	// relocation-mapping.json (CNAB core 103).
	RelocationMappingDir string
	// BeforeCommit, if set, runs after everything was pushed and before the
	// trusted state is committed; an error leaves the state as it was.
	BeforeCommit func() error
	Client       *mirror.Client
	Progress     Progress
	// Volumes finds and checks a volume set; see VolumeOptions.
	Volumes VolumeOptions

	// Include and Exclude select images by their original references, with
	// the policy's path patterns (select.go); none means every image.
	Include, Exclude []string
	// Map places images: original reference → destination reference (tag
	// or digest), as the mapping an import reports; images it does not
	// name land under To.
	Map map[string]string
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
	// Index is the index export --platform chose the image out of: the
	// image lands as that platform's manifest.
	Index *layout.IndexOrigin `json:"index,omitempty"`
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

	// Excluded lists the images of the archive left out (--include,
	// --exclude): verified with the archive, not pushed.
	Excluded []string `json:"excluded,omitempty"`
}

// target is one image's destination and what it needs.
type target struct {
	image   layout.Image
	repo    name.Repository
	tag     string
	closure *layout.Closure
	// complete is set when the destination holds the image whole already;
	// current is what its tag resolved to before the import, if anything.
	complete bool
	current  *v1.Hash
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
	to := ""
	if o.To != "" || len(o.Map) == 0 {
		var err error
		if to, err = checkTo(o.To); err != nil {
			return nil, err
		}
	}
	dests, err := checkSelection(o)
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
	verify.Names(s.TOC, s.ps)
	closures := verify.Structure(s.TOC, s.Index, s.Small, s.ps)
	verify.Bundles(s.TOC, s.Small, s.ps)
	// What lands is chosen before trust: binding and policy apply to the
	// selected images; the archive's metadata is verified whole all the same.
	if err := checkMapKeys(dests, s.TOC); err != nil {
		return nil, err
	}
	if s.sel, err = selectImages(s.TOC, o.Include, o.Exclude); err != nil {
		return nil, err
	}
	rep.Excluded = s.sel.excluded
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
	targets, err := plan(o.Client, to, dests, s.sel.images, closures)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		rep.Mapping[t.image.Ref] = dest(t)
		rep.Images = append(rep.Images, ImportedImage{Ref: t.image.Ref, Target: dest(t), Digest: t.image.Digest, Status: "planned", Index: t.image.Index})
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

	cp := newCopier(o.Client, s, prog, o.Jobs)
	if err := cp.findComplete(ctx, targets); err != nil {
		return nil, err
	}
	volumesChecked := s.checkVolumes(ctx, o.Jobs)
	if err := cp.pushBlobs(ctx, targets); err != nil {
		return nil, err
	}
	// A volume that does not match its index is bad media: no manifest
	// is pushed from it.
	if err := volumesChecked(); IsRefused(err) {
		return refuse(err)
	} else if err != nil {
		return nil, err
	}
	if err := cp.pushManifests(ctx, targets, rep); err != nil {
		return nil, err
	}
	// Nothing is tagged with metadata that expired during the import.
	if err := rep.Trust.checkFresh(o.Trust.now()); err != nil {
		for _, pr := range problemsOf(err) {
			s.ps.Add(pr.Subject, "%s; nothing was tagged", pr.Reason)
		}
		return refuse(s.ps.Err())
	}
	if err := cp.pushTags(ctx, targets, rep); err != nil {
		return nil, err
	}
	if rep.Bundles, err = cp.pushBundles(ctx, targets, rep); err != nil {
		return nil, err
	}
	st := cp.p.Stats()
	rep.BlobsPushed, rep.BlobsMounted, rep.BlobsSkipped, rep.BytesPushed = st.Uploaded, st.Mounted, st.Present, st.Bytes
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
	if err := writeMappings(o, rep); err != nil {
		return nil, err
	}
	rep.Verdict = "ok"
	return rep, nil
}

// writeMappings writes what the import relocated where, as asked.
func writeMappings(o ImportOptions, rep *ImportReport) error {
	if o.MappingFile != "" {
		data, err := json.MarshalIndent(rep.Mapping, "", "  ")
		if err == nil {
			err = atomicfile.WriteFile(o.MappingFile, append(data, '\n'), 0o644)
		}
		if err != nil {
			return fmt.Errorf("writing mapping %s: %w", o.MappingFile, err)
		}
	}
	if o.RelocationMappingDir == "" {
		return nil
	}
	if err := os.MkdirAll(o.RelocationMappingDir, 0o755); err != nil {
		return err
	}
	for _, b := range rep.Bundles {
		data, err := json.MarshalIndent(b.RelocationMapping, "", "  ")
		if err != nil {
			return err
		}
		name := strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(b.Ref) + ".relocation-mapping.json"
		if err := atomicfile.WriteFile(filepath.Join(o.RelocationMappingDir, name), append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing the relocation mapping of %s: %w", b.Ref, err)
		}
	}
	return nil
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

// ErrNameConflict is a destination that two images of an archive would
// share: the user must choose another --to or import them apart.
var ErrNameConflict = errors.New("name conflict")

// plan maps every image to its destination: its --map destination (dests,
// keyed by original reference), else HOST/path/name:tag becomes
// TO/path/name:tag. Two images may not land on one name.
func plan(c *mirror.Client, to string, dests map[string]string, images []layout.Image, closures map[string]*layout.Closure) ([]*target, error) {
	var out []*target
	landed := map[string]string{}
	for _, im := range images {
		if err := layout.CheckRef(im.Ref); err != nil {
			return nil, verify.Refuse(im.Ref, "refused reference: %v", err)
		}
		repo, tag, err := place(c, to, dests, im)
		if err != nil {
			return nil, err
		}
		t := &target{image: im, repo: repo, tag: tag, closure: closures[im.Ref]}
		if prev, ok := landed[dest(t)]; ok {
			return nil, fmt.Errorf("%w: %s and %s would both land on %s: place one elsewhere with --map, or import them separately or under different prefixes", ErrNameConflict, prev, im.Ref, dest(t))
		}
		landed[dest(t)] = im.Ref
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].image.Ref < out[j].image.Ref })
	return out, nil
}
