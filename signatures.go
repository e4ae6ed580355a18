package relocate

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/mirror"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/verify"
	"github.com/sigstore/sigstore-go/pkg/root"
	"golang.org/x/sync/errgroup"
)

// carrySignatures turns the layers of signature attachments (signed
// payloads, envelopes, bundles; at most layout.MaxSignatureSize each) into
// signature blobs held in memory, so that the archive carries them among
// its metadata and a site can verify every signature before it reads a
// layer. Each blob is fetched once and checked against its digest.
func carrySignatures(ctx context.Context, c *mirror.Client, g *mirror.Graph, jobs int) error {
	var todo []*mirror.Node
	seen := map[*mirror.Node]bool{}
	for _, a := range g.Attachments {
		m, ok := g.Blobs[a.Digest]
		if !ok || m.Data == nil {
			continue
		}
		for _, l := range layout.SignatureLayers(a, m.Data) {
			n, ok := g.Blobs[l.Digest]
			if !ok || n.Kind != layout.KindLayer || n.Size != l.Size || seen[n] {
				continue
			}
			seen[n] = true
			todo = append(todo, n)
		}
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(jobs, 1))
	for _, n := range todo {
		eg.Go(func() error {
			var buf bytes.Buffer
			if n.File != "" {
				b, err := os.ReadFile(n.File)
				if err != nil {
					return err
				}
				if err := layout.CopyVerified(&buf, bytes.NewReader(b), n.Desc, n.File); err != nil {
					return err
				}
			} else if err := c.FetchBlob(ctx, n.Repo, n.Desc, &buf); err != nil {
				return fmt.Errorf("signature blob: %w", err)
			}
			n.Data, n.Kind = buf.Bytes(), layout.KindSignature
			return nil
		})
	}
	return eg.Wait()
}

// checkSignatureOptions refuses --require-signatures without a signature
// rule to apply: it would mean nothing, and a site that believes it is
// checking signatures must be told it is not.
func (o TrustOptions) checkSignatureOptions() error {
	if o.RequireSignatures && !o.Policy.HasSignatureRules() {
		return fmt.Errorf("%w: --require-signatures needs a --policy with signature rules (\"signatures\": [{\"paths\": [...], \"require\": [...]}]): it requires a valid signature under the site's policy", ErrUsage)
	}
	return nil
}

// signatures verifies the signatures of every image the site's policy
// covers (every image, with RequireSignatures), recording a problem for
// each image refused. It runs before anything is pushed.
func (s *source) signatures(ctx context.Context, o TrustOptions, tr *TrustReport) (*verify.SignatureResult, error) {
	if !o.Policy.HasSignatureRules() {
		return nil, nil
	}
	in := verify.SignatureInput{Policy: o.Policy, Require: o.RequireSignatures, TOC: s.selectedTOC(), Small: s.Small}
	if len(o.SigstoreTrustedRoot) > 0 {
		tr, err := root.NewTrustedRootFromJSON(o.SigstoreTrustedRoot)
		if err != nil {
			return nil, fmt.Errorf("%w: --sigstore-trusted-root: %v", ErrUsage, err)
		}
		in.TrustedRoot, in.TrustedRootSource = tr, "--sigstore-trusted-root "+o.SigstoreTrustedRootFile
	}
	if tr != nil {
		in.Trust = tr.TrustResult
	}
	return verify.Signatures(ctx, in, s.ps)
}

// carryTargets fetches the target files of a TUF repository that the
// source's patterns name (export --tuf-targets), from URL/targets/.
func carryTargets(ctx context.Context, hc *http.Client, src TUFSource, chain *tufstore.Chain) ([]string, error) {
	var out []string
	for _, glob := range src.Targets {
		names, err := chain.CollectTargets(ctx, hc, strings.TrimSuffix(src.URL, "/")+"/targets", glob)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%w: --tuf-targets %s=%s: no target of %s matches", ErrUsage, src.Name, glob, src.URL)
		}
		out = append(out, names...)
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}
