package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/tufstore"
	"github.com/relocate-dev/relocate/verify/signature"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// SignatureRule requires signatures of the images whose references match
// Paths (the same patterns and name checks as mappings). For each image the
// first rule that matches applies, and every requirement of it must hold:
//
//	"signatures": [
//	  {"paths": ["registry.example.com/prod/*"],
//	   "require": [{"cosign": {"keys": ["keys/release.pub"]}},
//	               {"notation": {"trustStores": {"ca:acme": ["acme-ca.pem"]}, "trustPolicy": "trustpolicy.json"}}]},
//	  {"paths": ["registry.example.com/*"],
//	   "require": [{"cosign": {"identities": [{"issuer": "https://token.actions.githubusercontent.com",
//	                                           "subjectRegExp": "^https://github.com/acme/"}]}}]}
//	]
//
// A requirement is a verify/signature Requirement; files it names resolve
// against the policy file's directory.
type SignatureRule struct {
	Paths   []string                `json:"paths"`
	Require []signature.Requirement `json:"require"`
}

// TUFTarget names a target file of a TUF repository the archive carries.
type TUFTarget struct {
	TUF    string `json:"tuf"`
	Target string `json:"target"`
}

// HasSignatureRules reports whether the policy requires any signature.
func (p *Policy) HasSignatureRules() bool { return p != nil && len(p.Signatures) > 0 }

// checkSignatures checks the shape of the signature rules, without reading
// any file.
func (p *Policy) checkSignatures() error {
	for i, r := range p.Signatures {
		if len(r.Paths) == 0 || len(r.Require) == 0 {
			return fmt.Errorf("policy: signature rule %d needs paths and require", i)
		}
		for _, g := range r.Paths {
			if err := checkGlob(g); err != nil {
				return fmt.Errorf("policy: signature rule %d: %w", i, err)
			}
		}
		for _, req := range r.Require {
			if err := req.Validate(); err != nil {
				return fmt.Errorf("policy: signature rule %d: %w", i, err)
			}
		}
	}
	if t := p.SigstoreTrustedRoot; t != nil {
		if err := tufstore.CheckName(t.TUF); err != nil || t.Target == "" {
			return fmt.Errorf("policy: sigstoreTrustedRoot needs a TUF repository name (\"tuf\") and a target (\"target\")")
		}
	}
	return nil
}

// loadSignatureFiles reads every file the rules name (keys, certificates,
// trust policies, trusted roots) once, so that a mistake in the policy is
// found before an archive is read. Keyless requirements that rely on the
// site's trusted root are loaded against an empty one here.
func (p *Policy) loadSignatureFiles() error {
	for i, r := range p.Signatures {
		if _, err := signature.LoadSet(r.Require, signature.LoadOptions{BaseDir: p.dir, TrustedRoot: root.TrustedMaterialCollection{}}); err != nil {
			return fmt.Errorf("policy: signature rule %d: %w", i, err)
		}
	}
	return nil
}

// SignatureInput is what a signature decision depends on. Policy, Require
// and TrustedRoot belong to the site; TOC, Small and Trust come from the
// archive (Trust after TUF verified it).
type SignatureInput struct {
	Policy *Policy
	// Require: every image needs a rule it satisfies (--require-signatures).
	Require bool
	TOC     *layout.TOC
	// Small holds the archive's metadata blobs, checked against their
	// digests: attachment manifests and signature blobs.
	Small map[v1.Hash][]byte
	// Trust is the TUF verification, whose carried targets supply the
	// policy's sigstoreTrustedRoot.
	Trust *TrustResult
	// TrustedRoot is a Sigstore trusted root the site gives; it takes the
	// place of the policy's TUF target. TrustedRootSource names it.
	TrustedRoot       root.TrustedMaterial
	TrustedRootSource string
}

// SignatureResult is the signature decision for every image.
type SignatureResult struct {
	// TrustedRoot says where keyless requirements got their Sigstore
	// trusted root, if anywhere.
	TrustedRoot string            `json:"trustedRoot,omitempty"`
	Images      []ImageSignatures `json:"images"`
}

// ImageSignatures is the outcome for one image.
type ImageSignatures struct {
	Ref    string  `json:"ref"`
	Digest v1.Hash `json:"digest"`
	// Rule is the index of the signature rule that applied, -1 for none.
	Rule  int      `json:"rule"`
	Paths []string `json:"paths,omitempty"`
	// Verdict is "ok", "refused", or "not covered" (no rule matched, and
	// signatures were not required).
	Verdict   string               `json:"verdict"`
	Satisfied []signature.Result   `json:"satisfied,omitempty"`
	Failures  []*signature.Failure `json:"failures,omitempty"`
	Problem   string               `json:"problem,omitempty"`
	// Through names the index (reference@digest) whose signatures
	// satisfied the rule, for a platform manifest export --platform chose
	// out of it.
	Through string `json:"through,omitempty"`
}

// collectError is signatures that could not even be collected.
type collectError struct{ err error }

func (e collectError) Error() string { return e.err.Error() }

// checkSigned checks the signatures attached to one manifest against a set.
func checkSigned(ctx context.Context, set signature.Set, im layout.Image, attached map[v1.Hash][]layout.Attachment, fetch signature.FetchFunc) ([]signature.Result, error) {
	sigs, err := signature.Collect(signature.Subject{Ref: im.Ref, Digest: im.Digest, MediaType: im.MediaType, Size: im.Size}, attached[im.Digest], fetch)
	if err != nil {
		return nil, collectError{err}
	}
	return set.Check(ctx, sigs)
}

// signatureRuleFor is the first rule that matches any name of the image:
// its own reference, or that of the index it was chosen from.
func (p *Policy) signatureRuleFor(im layout.Image) (int, *SignatureRule) {
	if p == nil {
		return -1, nil
	}
	for i := range p.Signatures {
		for _, n := range im.Names() {
			if matchAny(p.Signatures[i].Paths, n) {
				return i, &p.Signatures[i]
			}
		}
	}
	return -1, nil
}

// Signatures verifies, offline, the signatures attached to every image
// that a signature rule of the policy covers (with Require, every image
// must be covered). An image whose signatures do not satisfy its rule is
// recorded in ps under its reference, with each failing requirement and its
// reason. The error is operational (a policy file that cannot be read).
func Signatures(ctx context.Context, in SignatureInput, ps *Problems) (*SignatureResult, error) {
	res := &SignatureResult{}
	if !in.Policy.HasSignatureRules() {
		return res, nil
	}
	trusted, source, why := in.trustedRoot(ps)
	res.TrustedRoot = source
	sets := map[int]signature.Set{}
	setErrs := map[int]error{}
	load := func(i int, r *SignatureRule) (signature.Set, error) {
		if s, ok := sets[i]; ok {
			return s, setErrs[i]
		}
		s, err := signature.LoadSet(r.Require, signature.LoadOptions{BaseDir: in.Policy.dir, TrustedRoot: trusted})
		sets[i], setErrs[i] = s, err
		return s, err
	}
	attached := in.TOC.AttachedTo()
	blobs := map[v1.Hash]layout.Blob{}
	for _, b := range in.TOC.Blobs {
		blobs[b.Digest] = b
	}
	fetch := signature.FetchFunc(func(h v1.Hash) ([]byte, error) {
		b, ok := in.Small[h]
		if !ok {
			return nil, fmt.Errorf("not among the archive's metadata")
		}
		return b, nil
	})
	for _, im := range in.TOC.Images {
		out := ImageSignatures{Ref: im.Ref, Digest: im.Digest, Rule: -1}
		refuse := func(format string, args ...any) {
			out.Verdict, out.Problem = "refused", fmt.Sprintf(format, args...)
			ps.Add(im.Ref, "signatures: %s", out.Problem)
		}
		i, rule := in.Policy.signatureRuleFor(im)
		switch {
		case rule == nil && in.Require:
			refuse("signatures are required (--require-signatures) and no signature rule of the policy covers this image")
		case rule == nil:
			out.Verdict = "not covered"
		default:
			out.Rule, out.Paths = i, rule.Paths
			set, err := load(i, rule)
			if errors.Is(err, signature.ErrNoTrustedRoot) {
				refuse("signature rule %d (%s) needs a Sigstore trusted root: %s", i, strings.Join(rule.Paths, ", "), why)
				break
			}
			if err != nil {
				return nil, fmt.Errorf("policy: signature rule %d: %w", i, err)
			}
			if stale := inLayers(attached[im.Digest], in.Small, blobs); stale != "" {
				refuse("signature blob %s travels among the archive's layers (an archive written before relocate carried signatures with its metadata): signatures cannot be verified before the layers; export the images again", stale)
				break
			}
			results, err := checkSigned(ctx, set, im, attached, fetch)
			if x := through(im); err != nil && x != nil {
				// A platform manifest chosen out of an index is signed
				// when the index is (Structure checked that it lists it).
				if stale := inLayers(attached[x.Digest], in.Small, blobs); stale == "" {
					if r, xerr := checkSigned(ctx, set, *x, attached, fetch); xerr == nil {
						results, err, out.Through = r, nil, x.Ref+"@"+x.Digest.String()
					}
				}
			}
			var ce collectError
			if errors.As(err, &ce) {
				refuse("%v", ce.err)
				break
			}
			out.Satisfied = results
			if err == nil {
				out.Verdict = "ok"
				break
			}
			out.Failures = signature.Failures(err)
			var msgs []string
			for _, f := range out.Failures {
				msgs = append(msgs, f.Error())
			}
			if len(msgs) == 0 {
				msgs = append(msgs, err.Error())
			}
			refuse("signature rule %d (%s): %s", i, strings.Join(rule.Paths, ", "), strings.Join(msgs, "; "))
		}
		res.Images = append(res.Images, out)
	}
	return res, nil
}

// trustedRoot is the site's Sigstore trusted root: the file it gives, else
// the TUF target its policy names, verified through TUF. When there is
// none, why says what is missing.
func (in SignatureInput) trustedRoot(ps *Problems) (tm root.TrustedMaterial, source, why string) {
	if in.TrustedRoot != nil {
		return in.TrustedRoot, in.TrustedRootSource, ""
	}
	t := in.Policy.SigstoreTrustedRoot
	if t == nil {
		return nil, "", "give the requirement a trustedRoot, the policy a sigstoreTrustedRoot, or --sigstore-trusted-root"
	}
	b, ok := in.Trust.Target(t.TUF, t.Target)
	if !ok {
		return nil, "", fmt.Sprintf("the policy's sigstoreTrustedRoot, target %s of TUF repository %s, is not in the archive (export with --tuf %s=URL --tuf-targets %s=%s)", t.Target, t.TUF, t.TUF, t.TUF, t.Target)
	}
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		ps.Add("tuf:"+t.TUF, "target %s is not a Sigstore trusted root: %v", t.Target, err)
		return nil, "", fmt.Sprintf("target %s of TUF repository %s is not a Sigstore trusted root", t.Target, t.TUF)
	}
	return tr, fmt.Sprintf("TUF %s target %s (verified)", t.TUF, t.Target), ""
}

// inLayers names a signature blob of these attachments that the archive
// carries as a layer rather than with its metadata, or "".
func inLayers(atts []layout.Attachment, small map[v1.Hash][]byte, blobs map[v1.Hash]layout.Blob) string {
	for _, a := range atts {
		raw, ok := small[a.Digest]
		if !ok {
			continue
		}
		for _, l := range layout.SignatureLayers(a, raw) {
			if b, ok := blobs[l.Digest]; ok && b.Kind == layout.KindLayer {
				return l.Digest.String()
			}
		}
	}
	return ""
}
