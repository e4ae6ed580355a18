package relocate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/internal/atomicfile"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/tufstore/notary"
	"github.com/relocate-dev/relocate/verify"
)

// ExportOptions says what to export and where.
type ExportOptions struct {
	Refs        []string            // image references, by tag or digest
	Output      string              // archive path; "-" writes to Stdout
	Stdout      io.Writer           // where "-" goes
	Compression archive.Compression // "" picks by the Output extension (.zst, .gz)
	Jobs        int                 // parallel fetches; 0 means a default
	// NoReferrers leaves out what is attached to the images (cosign tags,
	// OCI referrers); ArtifactTypes keeps only referrers of these types.
	NoReferrers   bool
	ArtifactTypes []string
	// SkipBrokenReferrers exports without attachments that the registry
	// lists but says are absent or serves invalid, reporting them, instead
	// of failing. Other failures (after retries) fail the export either way.
	SkipBrokenReferrers bool
	// Platforms (os/arch[/variant]) carries only these platforms of each
	// index: the chosen platform manifests travel alone under their own
	// digests (see layout.IndexOrigin); bundles travel whole.
	Platforms []string
	// FreeSpace reports the bytes free for an unprivileged writer in a
	// directory (default: statfs); tests replace it.
	FreeSpace func(dir string) (uint64, error)
	// Bundles are CNAB bundles: references to bundles stored the cnab-to-oci
	// way, or bundle.json files as FILE[=REF].
	Bundles []string
	// TUF lists repositories whose metadata chains travel with the images.
	TUF []TUFSource
	// Notary lists Notary v1 GUNs whose trust data travels with the images.
	Notary []NotarySource
	// WarnExpiry warns when carried metadata expires within this long
	// (media may travel for days).
	WarnExpiry time.Duration
	// HTTPClient fetches TUF metadata (default: http.DefaultClient's transport).
	HTTPClient *http.Client
	Client     *mirror.Client
	Progress   Progress
	// VolumeSize, when set, writes the archive as volumes Output.001, …
	// of at most this many bytes, and their index (see VolumesReport).
	VolumeSize int64
}

// ExportReport says what an export wrote.
type ExportReport struct {
	Output      string           `json:"output"`
	Compression string           `json:"compression"`
	Images      []layout.Image   `json:"images"`
	Bundles     []layout.Bundle  `json:"bundles,omitempty"`
	Attachments int              `json:"attachments"`
	Blobs       int              `json:"blobs"`
	Bytes       int64            `json:"bytes"`
	ArchiveSize int64            `json:"archiveSize,omitempty"`
	TUF         []layout.TUFRepo `json:"tuf,omitempty"`
	Notary      []layout.TUFRepo `json:"notary,omitempty"`
	// Expires is the earliest expiry of any carried TUF role.
	Expires  *time.Time `json:"expires,omitempty"`
	Warnings []string   `json:"warnings,omitempty"`
	// SkippedAttachments lists what --skip-broken-referrers left out: the
	// registry listed it, but said it is absent or served it invalid.
	SkippedAttachments []mirror.SkippedAttachment `json:"skippedAttachments,omitempty"`
	// Volumes describes the volume set written with VolumeSize.
	Volumes *VolumesReport `json:"volumes,omitempty"`
	// Platforms are those --platform chose; each image chosen out of an
	// index says which index (Image.Index) and lands as its own manifest.
	Platforms []string `json:"platforms,omitempty"`
	// RemovedTemporaryFiles are the temporary files of killed exports that
	// this export found in the output's directory and removed.
	RemovedTemporaryFiles []string `json:"removedTemporaryFiles,omitempty"`
}

// NotarySource is a Notary v1 GUN to carry, from a notary server; CA, if
// set, is the PEM the server's TLS certificate chains to.
type NotarySource struct {
	GUN, Server string
	CA          []byte
}

// TUFSource is a TUF repository to carry. With Root, export runs the TUF
// client workflow from it and refuses metadata that does not verify.
type TUFSource struct {
	Name, URL string
	Root      []byte
	// Targets are patterns of target names whose files travel too
	// (fetched from URL/targets/), e.g. "trusted_root.json".
	Targets []string
}

// DefaultJobs is the default number of parallel transfers: enough to hide
// registry latency without flooding it.
func DefaultJobs() int { return max(8, 4*runtime.NumCPU()) }

// sourceRef checks a reference to export: it names its registry (an
// archive names every image by its full reference, and TUF targets are
// those names), it parses, and its repository is a name. A reference
// without tag or digest means :latest.
func sourceRef(ref string) (string, error) {
	first, _, ok := strings.Cut(ref, "/")
	if !ok || !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "", fmt.Errorf("%w: reference %q names no registry: write it in full, e.g. docker.io/library/alpine:3.20 (an archive names every image by its full reference)", ErrUsage, ref)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("%w: reference %q: %v", ErrUsage, ref, err)
	}
	if err := layout.CheckRef(ref); err != nil {
		return "", fmt.Errorf("%w: reference %q: %v", ErrUsage, ref, err)
	}
	if _, isTag := r.(name.Tag); isTag && layout.TagOf(ref) == "" {
		ref += ":latest"
	}
	return ref, nil
}

// Export resolves every reference, walks its graph, and writes one archive:
// oci-layout, index.json, the table of contents, manifests and configs, then
// layers, each blob once and checked against its digest as it is fetched.
// A file output appears at its path only when complete.
func Export(ctx context.Context, o ExportOptions) (*ExportReport, error) {
	if len(o.Refs) == 0 && len(o.Bundles) == 0 {
		return nil, fmt.Errorf("nothing to export: give at least one image reference or bundle")
	}
	if err := checkVolumeOptions(o); err != nil {
		return nil, err
	}
	refs := make([]string, len(o.Refs))
	for i, r := range o.Refs {
		var err error
		if refs[i], err = sourceRef(r); err != nil {
			return nil, err
		}
	}
	o.Refs = refs
	bundles, err := parseBundles(o.Bundles)
	if err != nil {
		return nil, err
	}
	defer cleanup(bundles)
	if o.Client == nil {
		o.Client = mirror.New()
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs()
	}
	prog := progressOr(o.Progress)
	if o.Compression == "" {
		o.Compression = compressionFor(o.Output)
	}

	wo := mirror.WalkOptions{Jobs: o.Jobs, Attachments: !o.NoReferrers, ArtifactTypes: o.ArtifactTypes, SkipBroken: o.SkipBrokenReferrers}
	if wo.Platforms, wo.Whole, err = platformOptions(o.Platforms, bundles); err != nil {
		return nil, err
	}
	g, err := o.Client.Walk(ctx, append(append([]string(nil), o.Refs...), bundleRefs(bundles)...), wo)
	if err != nil {
		return nil, err
	}
	toc := &layout.TOC{SchemaVersion: layout.TOCSchemaVersion, Images: g.Images, Attachments: g.Attachments}
	if err := addBundles(o.Client, bundles, g, toc); err != nil {
		return nil, err
	}
	if err := carrySignatures(ctx, o.Client, g, o.Jobs); err != nil {
		return nil, err
	}
	if toc.TUF, err = collectTUF(ctx, o, g, toc.Bundles); err != nil {
		return nil, err
	}
	if toc.Notary, err = collectNotary(ctx, o, g); err != nil {
		return nil, err
	}
	for _, n := range g.Blobs {
		toc.Blobs = append(toc.Blobs, n.Blob)
	}
	toc.Sort()
	indexJSON, err := layout.BuildIndex(toc)
	if err != nil {
		return nil, err
	}
	tocJSON, err := toc.Marshal()
	if err != nil {
		return nil, err
	}
	names := []string{layout.LayoutFile, layout.IndexFile, layout.TOCFile}
	sizes := []int64{int64(len(layout.LayoutVersion)), int64(len(indexJSON)), int64(len(tocJSON))}
	for _, b := range toc.Blobs {
		names = append(names, layout.BlobPath(b.Digest))
		sizes = append(sizes, b.Size)
	}
	plan, err := archive.NewPlan(names, sizes)
	if err != nil {
		return nil, err
	}
	content := &exportContent{heads: [][]byte{[]byte(layout.LayoutVersion), indexJSON, tocJSON}, toc: toc, g: g, c: o.Client, prog: prog}
	rep := &ExportReport{Output: o.Output, Compression: string(o.Compression), Images: toc.Images, Attachments: len(toc.Attachments),
		Blobs: len(toc.Blobs), Bytes: toc.TotalBytes(), Warnings: g.Warnings, TUF: toc.TUF, Notary: toc.Notary, Bundles: toc.Bundles,
		SkippedAttachments: g.Skipped, Platforms: o.Platforms}
	rep.Expires, rep.Warnings = expiry(append(append([]layout.TUFRepo(nil), toc.TUF...), toc.Notary...), o.WarnExpiry, time.Now(), rep.Warnings)
	prog.Stage("export", toc.TotalBytes())
	defer prog.Done()

	if o.Output == "-" {
		return rep, archive.WriteStream(ctx, o.Stdout, o.Compression, plan, content)
	}
	// Before the first layer is fetched: the debris of killed exports goes,
	// and the archive must fit (space.go), in one file or in volumes.
	rep.RemovedTemporaryFiles, rep.Warnings, err = prepareOutput(o, plan.Size, rep.Warnings)
	if err != nil {
		return nil, err
	}
	if o.VolumeSize > 0 {
		return rep, exportVolumes(ctx, o, rep, plan, content, tocJSON)
	}
	f, err := atomicfile.CreateLocked(o.Output, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	if o.Compression == archive.None {
		err = archive.WriteParallel(ctx, f.File, plan, content, o.Jobs)
	} else {
		err = archive.WriteStream(ctx, f, o.Compression, plan, content)
	}
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil {
		rep.ArchiveSize = st.Size()
	}
	if err := f.Commit(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", o.Output, err)
	}
	return rep, nil
}

func compressionFor(path string) archive.Compression {
	switch {
	case strings.HasSuffix(path, ".zst"), strings.HasSuffix(path, ".zstd"):
		return archive.Zstd
	case strings.HasSuffix(path, ".gz"), strings.HasSuffix(path, ".tgz"):
		return archive.Gzip
	}
	return archive.None
}

// exportContent is what an export writes: the layout marker, index.json
// and the table of contents, metadata blobs held in memory, and layers
// fetched from their registry (or a spooled thick bundle) as they are
// written.
type exportContent struct {
	heads [][]byte
	toc   *layout.TOC
	g     *mirror.Graph
	c     *mirror.Client
	prog  Progress
}

func (e *exportContent) Data(i int) []byte {
	if i < len(e.heads) {
		return e.heads[i]
	}
	return e.g.Blobs[e.toc.Blobs[i-len(e.heads)].Digest].Data
}

func (e *exportContent) Fetch(ctx context.Context, i int, w io.Writer) error {
	n := e.g.Blobs[e.toc.Blobs[i-len(e.heads)].Digest]
	w = io.MultiWriter(w, progressWriter{e.prog})
	if n.File != "" {
		return copyFile(n, w)
	}
	return e.c.FetchBlob(ctx, n.Repo, n.Desc, w)
}

// collectTUF fetches every TUF repository's chain, verifies it when a root
// was given, and adds its metadata artifact to the graph.
func collectTUF(ctx context.Context, o ExportOptions, g *mirror.Graph, bundles []layout.Bundle) ([]layout.TUFRepo, error) {
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	var out []layout.TUFRepo
	for _, src := range o.TUF {
		chain, err := tufstore.Collect(ctx, hc, src.Name, src.URL)
		if err != nil {
			return nil, err
		}
		// CNAB Security: the in-toto files a bundle's target names travel too.
		for _, b := range bundles {
			if _, err := chain.CollectInToto(ctx, hc, strings.TrimSuffix(src.URL, "/")+"/targets", b.Ref); err != nil {
				return nil, err
			}
		}
		repo := layout.TUFRepo{Name: src.Name, URL: src.URL}
		if repo.Targets, err = carryTargets(ctx, hc, src, chain); err != nil {
			return nil, err
		}
		for _, m := range chain.Missing {
			g.Warnings = append(g.Warnings, fmt.Sprintf("TUF %s: delegated role %s: images it should vouch for will be refused", src.Name, m))
		}
		if src.Root != nil {
			s, err := tufstore.Update(src.Name, chain.Files, tufstore.Trusted{Root: src.Root}, time.Now(), tufstore.Grace{})
			if err != nil {
				return nil, verify.Refuse("tuf:"+src.Name, "metadata from %s does not verify from the given root: %v", src.URL, err)
			}
			err = s.VerifyCarried()
			s.Close()
			if err != nil {
				return nil, verify.Refuse("tuf:"+src.Name, "%v", err)
			}
			repo.Verified = true
		}
		for _, r := range chain.Roles {
			repo.Roles = append(repo.Roles, layout.TUFRole{Role: r.Role, Version: r.Version, Expires: r.Expires, File: r.File})
		}
		if err := addPacked(g, layout.TUFArtifactType, &repo, chain.Files); err != nil {
			return nil, err
		}
		out = append(out, repo)
	}
	return out, nil
}

// addPacked packs a repository's metadata files as an artifact, adds it to
// the graph and records its manifest in repo.
func addPacked(g *mirror.Graph, artifactType string, repo *layout.TUFRepo, files map[string][]byte) error {
	p, err := layout.PackTrust(artifactType, repo.Name, repo.URL, files)
	if err != nil {
		return err
	}
	for _, b := range p.Blobs {
		if _, ok := g.Blobs[b.Digest]; !ok {
			g.Blobs[b.Digest] = &mirror.Node{Blob: b, Data: p.Data[b.Digest]}
		}
	}
	repo.Manifest = p.Digest
	return nil
}

// collectNotary fetches every GUN's trust data from its notary server and
// adds it to the graph. Verification happens at the site, from its pins.
func collectNotary(ctx context.Context, o ExportOptions, g *mirror.Graph) ([]layout.TUFRepo, error) {
	var out []layout.TUFRepo
	for _, src := range o.Notary {
		hc := o.HTTPClient
		if len(src.CA) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(src.CA) {
				return nil, fmt.Errorf("notary %s: no PEM certificate in the CA file", src.GUN)
			}
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			hc = &http.Client{Transport: t}
		}
		if hc == nil {
			hc = &http.Client{}
		}
		chain, err := notary.Collect(ctx, hc, src.Server, src.GUN)
		if err != nil {
			return nil, err
		}
		repo := layout.TUFRepo{Name: src.GUN, URL: src.Server}
		for _, r := range chain.Roles {
			repo.Roles = append(repo.Roles, layout.TUFRole{Role: r.Role, Version: r.Version, Expires: r.Expires, File: r.File})
		}
		if err := addPacked(g, layout.NotaryArtifactType, &repo, chain.Files); err != nil {
			return nil, err
		}
		out = append(out, repo)
	}
	return out, nil
}

// expiry finds the earliest expiry of the carried roles and warns about
// those that expire within warn of now.
func expiry(repos []layout.TUFRepo, warn time.Duration, now time.Time, warnings []string) (*time.Time, []string) {
	var first *time.Time
	for _, r := range repos {
		for _, ro := range r.Roles {
			if first == nil || ro.Expires.Before(*first) {
				t := ro.Expires
				first = &t
			}
			if warn > 0 && ro.Expires.Before(now.Add(warn)) {
				warnings = append(warnings, fmt.Sprintf("TUF %s: %s (version %d) expires %s, within %s", r.Name, ro.Role, ro.Version, ro.Expires.Format(time.RFC3339), warn))
			}
		}
	}
	return first, warnings
}
