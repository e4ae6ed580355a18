package relocate

import (
	"context"
	"io"
	"runtime"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/verify"
	"golang.org/x/sync/errgroup"
)

// VerifyOptions says which archive to check.
type VerifyOptions struct {
	Archive string    // path, or "-" for Stdin
	Stdin   io.Reader // where "-" comes from
	Jobs    int       // parallel hashing when the archive is a plain file
	// RequireSignatures: every image must have a valid signature under the
	// policy's signature rules (as TrustOptions.RequireSignatures).
	RequireSignatures bool
	// Trust holds the site's trust settings; the state is read, never written.
	Trust    TrustOptions
	Progress Progress
	// Volumes finds and checks a volume set; see VolumeOptions.
	Volumes VolumeOptions
}

// VerifyReport summarises an archive and, when it is refused, every reason.
type VerifyReport struct {
	Archive     string         `json:"archive"`
	Compression string         `json:"compression"`
	Verdict     string         `json:"verdict"` // "ok" or "refused"
	Images      []layout.Image `json:"images"`
	Platforms   int            `json:"platforms"`
	Attachments int            `json:"attachments"`
	// Unsigned lists images with no signature attached: information, unless
	// signatures are required.
	Unsigned []string         `json:"unsigned,omitempty"`
	Blobs    int              `json:"blobs"`
	Bytes    int64            `json:"bytes"`
	Problems []verify.Problem `json:"problems,omitempty"`
	// Trust is the TUF verification and binding, when the archive carries
	// TUF metadata or the site has a policy.
	Trust *TrustReport `json:"trust,omitempty"`
	// Bundles lists the CNAB bundles with their security level.
	Bundles []verify.BundleTrust `json:"bundles,omitempty"`
	// Signatures is the verdict of the policy's signature rules.
	Signatures *verify.SignatureResult `json:"signatures,omitempty"`
	// Volumes describes the volume set read, or the one volume checked.
	Volumes *VolumesReport `json:"volumes,omitempty"`
}

// Verify reads an archive once and checks every blob's size and digest, that
// every manifest's references are present, and that index.json and the table
// of contents agree. A refusal is returned as a *verify.Error together with a
// report naming every problem.
func Verify(ctx context.Context, o VerifyOptions) (*VerifyReport, error) {
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	o.Trust.RequireSignatures = o.Trust.RequireSignatures || o.RequireSignatures
	if err := o.Trust.checkSignatureOptions(); err != nil {
		return nil, err
	}
	if rep, err, ok := verifyOneVolume(ctx, o); ok {
		return rep, err
	}
	s, err := openArchive(o.Archive, o.Stdin, o.Volumes)
	if err != nil {
		return refusedVerify(o.Archive, err), err
	}
	defer s.Close()
	verify.Names(s.TOC, s.ps)
	verify.Structure(s.TOC, s.Index, s.Small, s.ps)
	verify.Bundles(s.TOC, s.Small, s.ps)
	var tr *TrustReport
	store, err := tufstore.Open(stateDir(o.Trust))
	if err != nil {
		return nil, err
	}
	if applies, err := s.trustApplies(o.Trust, store); err != nil {
		return nil, err
	} else if applies {
		if tr, _, err = s.trust(o.Trust, store); err != nil {
			return nil, err
		}
	}
	sigs, err := s.signatures(ctx, o.Trust, tr)
	if err != nil {
		return nil, err
	}

	prog := progressOr(o.Progress)
	prog.Stage("verify", s.TOC.TotalBytes())
	defer prog.Done()
	volumesChecked := s.checkVolumes(ctx, o.Jobs)
	if err := s.hashLayers(ctx, o.Jobs, prog); err != nil {
		return refusedVerify(o.Archive, err), err
	}
	if err := volumesChecked(); err != nil && !IsRefused(err) {
		return nil, err
	}

	rep := &VerifyReport{Archive: o.Archive, Compression: string(s.R.Compression()), Images: s.TOC.Images, Attachments: len(s.TOC.Attachments),
		Blobs: len(s.TOC.Blobs), Bytes: s.TOC.TotalBytes(), Verdict: "ok", Unsigned: verify.Unsigned(s.TOC), Trust: tr, Bundles: bundleLevels(s.TOC, tr), Signatures: sigs}
	if s.vols != nil {
		rep.Volumes = s.vols.report()
	}
	for _, im := range s.TOC.Images {
		rep.Platforms += max(len(im.Platforms), 1)
	}
	if err := s.ps.Err(); err != nil {
		rep.Verdict = "refused"
		rep.Problems = s.ps.List()
		return rep, err
	}
	return rep, nil
}

// hashLayers checks every layer's digest: in parallel from a plain file,
// else in stream order.
func (s *source) hashLayers(ctx context.Context, jobs int, prog Progress) error {
	check := func(e *archive.Entry, b layout.Blob, r io.Reader) error {
		err := layout.CopyVerified(progressWriter{prog}, r, v1.Descriptor{Digest: b.Digest, Size: b.Size}, e.Name)
		if IsRefused(err) {
			s.ps.Add(e.Name, "%s", reason(err))
			return nil
		}
		return err
	}
	if s.R.RandomAccess() {
		entries := make([]*archive.Entry, 0, len(s.Layers))
		for _, e := range s.Layers {
			entries = append(entries, e)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Offset < entries[j].Offset })
		eg, ctx := errgroup.WithContext(ctx)
		eg.SetLimit(max(jobs, 1))
		for _, e := range entries {
			eg.Go(func() error {
				if err := ctx.Err(); err != nil {
					return err
				}
				d, _ := layout.ParseBlobPath(e.Name)
				return check(e, s.Blobs[d], s.R.SectionReader(e))
			})
		}
		return eg.Wait()
	}
	for {
		e, b, err := s.nextLayer()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := check(e, b, s.R); err != nil {
			return err
		}
	}
}

// refusedVerify is the report of an archive that could not even be read
// through, or nil when err is operational.
func refusedVerify(path string, err error) *VerifyReport {
	if !IsRefused(err) {
		return nil
	}
	return &VerifyReport{Archive: path, Verdict: "refused", Problems: problemsOf(err)}
}

// bundleLevels is what trust established of each bundle, or level 0 when
// nothing was checked.
func bundleLevels(toc *layout.TOC, tr *TrustReport) []verify.BundleTrust {
	if tr != nil && tr.TrustResult != nil {
		return tr.Bundles
	}
	var out []verify.BundleTrust
	for _, b := range toc.Bundles {
		out = append(out, verify.BundleTrust{Ref: b.Ref, Level: "0"})
	}
	return out
}
