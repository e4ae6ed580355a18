package intoto

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/in-toto/in-toto-golang/in_toto"
)

// ErrVerification is wrapped by every refusal: the layout, a link or an
// artifact does not hold up. Other errors are operational (temporary files,
// bad options).
var ErrVerification = errors.New("in-toto verification failed")

// DefaultInspectionTimeout bounds each inspection when Options.InspectionTimeout is zero.
const DefaultInspectionTimeout = 5 * time.Minute

// Options tune Verify.
type Options struct {
	// Now is the time layouts must not have expired at; zero means time.Now().
	// An importer passes its own notion of time (e.g. the TUF reference time).
	Now time.Time
	// Threshold is how many of the given layout keys must have signed the root
	// layout; zero means all of them, which is in-toto-verify's rule.
	Threshold int
	// Want maps final products (artifact paths as the last step recorded them)
	// to "<alg>:<hex>" digests they must have, e.g.
	// {"bundle.json": "sha256:…"}. The final products are the products of the
	// root layout's last step, as in in-toto's summary link.
	Want map[string]string

	// RunInspections runs the layout's inspections (commands the layout names,
	// so only once its signatures, expiry and links have been verified) with
	// in-toto-golang's artifact recording, in one fresh temporary directory
	// per layout holding a copy of InspectionFiles, each under
	// InspectionTimeout, with this process's environment and privileges.
	// Otherwise they are listed in Result.InspectionsNotRun.
	RunInspections    bool
	InspectionTimeout time.Duration
	// InspectionFiles is what the inspections see in their working directory,
	// typically the delivered artifacts; nil means an empty directory. Unlike
	// in-toto-verify, the layout and the links are not put there.
	InspectionFiles fs.FS
}

// Result is what a successful Verify checked. Names inside sublayouts are
// prefixed with the sublayout's link directory, "<step>.<keyid8>/".
type Result struct {
	Steps             []string // steps whose links were verified, innermost first
	InspectionsRun    []string
	InspectionsNotRun []string
	Warnings          []string // command misalignment, as in-toto warns
}

// Verify checks the root layout against keys delivered out of band and the
// links against the layout; see the package documentation for the order of
// checks. keys maps a key id or a file name to a public key, in PEM
// (PKIX/SubjectPublicKeyInfo, as in-toto-keygen writes RSA keys) or the
// securesystemslib JSON in-toto-keygen writes for ed25519 and ecdsa keys; a
// key id as the map key must be that key's id. links maps file names as
// in-toto writes them, "<step>.<keyid8>.link", to their bytes; a sublayout's
// links are named "<step>.<keyid8>/<substep>.<keyid8>.link" (see
// CheckLinkName; LinkNames derives these names from delivery names). Link
// names are only looked up, never used as paths.
func Verify(layout []byte, keys map[string][]byte, links map[string][]byte, o Options) (*Result, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.InspectionTimeout <= 0 {
		o.InspectionTimeout = DefaultInspectionTimeout
	}
	layoutKeys, err := parseKeys(keys)
	if err != nil {
		return nil, err
	}
	threshold := o.Threshold
	if threshold == 0 {
		threshold = len(layoutKeys)
	}
	if threshold < 0 || threshold > len(layoutKeys) {
		return nil, fmt.Errorf("in-toto: layout threshold %d with %d distinct keys", o.Threshold, len(layoutKeys))
	}

	for _, name := range slices.Sorted(maps.Keys(links)) {
		if err := CheckLinkName(name); err != nil {
			return nil, refuse("link "+name, "%v", err)
		}
	}

	// in-toto-golang decodes metadata from files only (LoadMetadata), so
	// each document goes, one at a time, to one fixed name in a private
	// directory: no name the caller gives ever becomes a path.
	dir, err := os.MkdirTemp("", "relocate-intoto-*")
	if err != nil {
		return nil, fmt.Errorf("in-toto: %w", err)
	}
	defer os.RemoveAll(dir)

	v := &verifier{o: o, res: &Result{}, file: filepath.Join(dir, "metadata.json"), links: links,
		names: slices.Sorted(maps.Keys(links))}
	env, err := v.decode(layout)
	if err != nil {
		return nil, refuse("root layout", "%w", err)
	}
	lay, reduced, err := v.layout(env, layoutKeys, threshold, "", 0)
	if err != nil {
		return nil, err
	}
	if err := checkWant(lay, reduced, o.Want); err != nil {
		return nil, err
	}
	return v.res, nil
}

type verifier struct {
	o     Options
	res   *Result
	file  string            // where decode puts a document for LoadMetadata
	links map[string][]byte // link name → bytes, names checked by CheckLinkName
	names []string          // the link names, sorted
}

// decode parses one in-toto document (a layout or a link, Metablock or DSSE).
func (v *verifier) decode(b []byte) (in_toto.Metadata, error) {
	if err := os.WriteFile(v.file, b, 0o600); err != nil {
		return nil, err
	}
	return in_toto.LoadMetadata(v.file)
}

// layout verifies one (root or sub) layout and its links, returning the
// layout and one link per step for the caller's summary. prefix is the
// layout's link directory relative to the root layout's ("" for the root
// layout, "<step>.<keyid8>/" for a sublayout), depth its nesting.
func (v *verifier) layout(env in_toto.Metadata, keys map[string]in_toto.Key, threshold int, prefix string, depth int) (in_toto.Layout, map[string]in_toto.Metadata, error) {
	where := "root layout"
	if prefix != "" {
		where = "sublayout " + strings.TrimSuffix(prefix, "/")
	}
	if err := verifySignatures(env, keys, threshold); err != nil {
		return in_toto.Layout{}, nil, refuse(where, "%w", err)
	}
	lay, ok := env.GetPayload().(in_toto.Layout)
	if !ok {
		return in_toto.Layout{}, nil, refuse(where, "%w", in_toto.ErrNotLayout)
	}
	expires, err := time.Parse(in_toto.ISO8601DateSchema, lay.Expires)
	if err != nil {
		return in_toto.Layout{}, nil, refuse(where, "expires %q: %w", lay.Expires, err)
	}
	if v.o.Now.After(expires) {
		return in_toto.Layout{}, nil, refuse(where, "expired at %s (now %s)", expires.Format(time.RFC3339), v.o.Now.UTC().Format(time.RFC3339))
	}

	rootPool, intermediatePool, err := in_toto.LoadLayoutCertificates(lay, nil)
	if err != nil {
		return in_toto.Layout{}, nil, refuse(where, "%w", err)
	}
	stepsMetadata, err := v.loadLinks(lay, prefix, where)
	if err != nil {
		return in_toto.Layout{}, nil, err
	}
	verified, err := in_toto.VerifyLinkSignatureThesholds(lay, stepsMetadata, rootPool, intermediatePool)
	if err != nil {
		return in_toto.Layout{}, nil, refuse(where, "%w", err)
	}
	for _, step := range lay.Steps {
		// A step with threshold 0 passes the library's threshold check with no
		// link at all (and ReduceStepsMetadata then panics): insist on one.
		if len(verified[step.Name]) == 0 {
			return in_toto.Layout{}, nil, refuse(where, "step %q: no link signed by an authorized functionary%s", step.Name, expectedLinks(step, nil, prefix))
		}
		// The library counts links by the key ID their file name and
		// signature claim; with certificates one functionary could claim
		// several. Count distinct signers instead.
		if n := distinctSigners(step, verified[step.Name]); n < max(step.Threshold, 1) {
			return in_toto.Layout{}, nil, refuse(where, "step %q: links from %d distinct functionaries, threshold %d", step.Name, n, step.Threshold)
		}
	}

	if err := v.sublayouts(lay, verified, prefix, depth); err != nil {
		return in_toto.Layout{}, nil, err
	}
	v.commandAlignment(lay, verified, prefix)

	reduced, err := in_toto.ReduceStepsMetadata(lay, verified)
	if err != nil {
		return in_toto.Layout{}, nil, refuse(where, "%w", err)
	}
	steps := make([]any, len(lay.Steps))
	for i, s := range lay.Steps {
		steps[i] = s
	}
	if err := in_toto.VerifyArtifacts(steps, reduced); err != nil {
		return in_toto.Layout{}, nil, refuse(where, "%w", err)
	}
	for _, s := range lay.Steps {
		v.res.Steps = append(v.res.Steps, prefix+s.Name)
	}

	if len(lay.Inspect) > 0 {
		if !v.o.RunInspections {
			for _, in := range lay.Inspect {
				v.res.InspectionsNotRun = append(v.res.InspectionsNotRun, prefix+in.Name)
			}
		} else if err := v.inspect(lay, reduced, where, prefix); err != nil {
			return in_toto.Layout{}, nil, err
		}
	}
	return lay, reduced, nil
}

// loadLinks does what in-toto's LoadLinksForLayout does with the files of
// a directory, on the caller's link names under prefix: for every step, each
// "<step>.<8 characters>.link" directly under prefix is filed under the key
// id of its first signature that those 8 characters begin. It refuses a step
// with fewer such links than its threshold, naming the files it expected.
func (v *verifier) loadLinks(lay in_toto.Layout, prefix, where string) (map[string]map[string]in_toto.Metadata, error) {
	out := make(map[string]map[string]in_toto.Metadata, len(lay.Steps))
	for _, step := range lay.Steps {
		perStep := map[string]in_toto.Metadata{}
		var unsigned []string // files with no signature under the key id their name gives
		for _, name := range v.names {
			rest, ok := strings.CutPrefix(name, prefix+step.Name+".")
			short, ok2 := strings.CutSuffix(rest, ".link")
			if !ok || !ok2 || len(short) != 8 || strings.Contains(short, "/") {
				continue
			}
			md, err := v.decode(v.links[name])
			if err != nil {
				return nil, refuse("link "+name, "%w", err)
			}
			i := slices.IndexFunc(md.Sigs(), func(s in_toto.Signature) bool { return strings.HasPrefix(s.KeyID, short) })
			if i < 0 {
				unsigned = append(unsigned, name)
				continue
			}
			perStep[md.Sigs()[i].KeyID] = md
		}
		if len(perStep) < step.Threshold {
			why := expectedLinks(step, perStep, prefix)
			if len(unsigned) > 0 {
				why += "; no signature under the key id their name gives: " + strings.Join(unsigned, ", ")
			}
			return nil, refuse(where, "step '%s' requires '%d' link metadata file(s), found '%d'%s",
				step.Name, step.Threshold, len(perStep), why)
		}
		out[step.Name] = perStep
	}
	return out, nil
}

// expectedLinks names the link files of the step's authorized keys that
// were not found, for a refusal to point at.
func expectedLinks(step in_toto.Step, found map[string]in_toto.Metadata, prefix string) string {
	var missing []string
	for _, id := range step.PubKeys {
		if _, ok := found[id]; !ok {
			missing = append(missing, prefix+fmt.Sprintf(in_toto.LinkNameFormat, step.Name, id))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "; no valid " + strings.Join(missing, ", ")
}

// sublayouts replaces every link that is itself a layout by the summary of
// that layout, verified by the same rules with the functionary's key, as
// in-toto's VerifySublayouts does (which would call InTotoVerify): its links
// are those under "<step>.<keyid8>/" (SublayoutLinkDirFormat) below prefix.
func (v *verifier) sublayouts(lay in_toto.Layout, verified map[string]map[string]in_toto.Metadata, prefix string, depth int) error {
	for _, step := range lay.Steps {
		links := verified[step.Name]
		for _, keyID := range slices.Sorted(maps.Keys(links)) {
			md := links[keyID]
			if _, ok := md.GetPayload().(in_toto.Layout); !ok {
				continue
			}
			key, ok := lay.Keys[keyID]
			if !ok {
				return refuse("step "+prefix+step.Name, "sublayout signer %s is not a layout key", keyID)
			}
			subDir := fmt.Sprintf(in_toto.SublayoutLinkDirFormat, step.Name, keyID)
			if depth >= MaxSublayoutDepth {
				return refuse("sublayout "+prefix+subDir, "nested deeper than %d sublayouts", MaxSublayoutDepth)
			}
			sub, reduced, err := v.layout(md, map[string]in_toto.Key{keyID: key}, 1, prefix+subDir+"/", depth+1)
			if err != nil {
				return err
			}
			_, dsse := md.(*in_toto.Envelope)
			summary, err := in_toto.GetSummaryLink(sub, reduced, step.Name, dsse)
			if err != nil {
				return refuse("sublayout "+prefix+subDir, "summary: %w", err)
			}
			links[keyID] = summary
		}
	}
	return nil
}

// commandAlignment mirrors in-toto's VerifyStepCommandAlignment, which prints
// its warnings to stdout; a library collects them instead.
func (v *verifier) commandAlignment(lay in_toto.Layout, verified map[string]map[string]in_toto.Metadata, prefix string) {
	for _, step := range lay.Steps {
		links := verified[step.Name]
		for _, keyID := range slices.Sorted(maps.Keys(links)) {
			link, ok := links[keyID].GetPayload().(in_toto.Link)
			if !ok || slices.Equal(link.Command, step.ExpectedCommand) {
				continue
			}
			v.res.Warnings = append(v.res.Warnings, fmt.Sprintf(
				"step %q: command %q of the link by %.8s differs from the expected %q",
				prefix+step.Name, link.Command, keyID, step.ExpectedCommand))
		}
	}
}

// verifySignatures counts distinct keys with a valid signature over the
// layout; in-toto-golang's VerifyLayoutSignatures demands all of them.
func verifySignatures(env in_toto.Metadata, keys map[string]in_toto.Key, threshold int) error {
	good := 0
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		if err := env.VerifySignature(keys[id]); err != nil {
			errs = append(errs, fmt.Errorf("key %.8s: %w", id, err))
			continue
		}
		good++
	}
	if good < threshold {
		return fmt.Errorf("%d of %d required layout signatures valid: %w", good, threshold, errors.Join(errs...))
	}
	return nil
}

// checkWant compares the caller's artifacts with the final products, which
// in-toto's summary link takes from the last step.
func checkWant(lay in_toto.Layout, reduced map[string]in_toto.Metadata, want map[string]string) error {
	if len(want) == 0 {
		return nil
	}
	if len(lay.Steps) == 0 {
		return refuse("root layout", "no steps, so no final products")
	}
	last := lay.Steps[len(lay.Steps)-1].Name
	link, ok := reduced[last].GetPayload().(in_toto.Link)
	if !ok {
		return refuse("step "+last, "link is not a link")
	}
	products := make(map[string]in_toto.HashObj, len(link.Products))
	for p, h := range link.Products {
		products[path.Clean(p)] = h
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		alg, hex, ok := strings.Cut(want[name], ":")
		if !ok || alg == "" || hex == "" {
			return fmt.Errorf("in-toto: want %q: %q is not <alg>:<hex>", name, want[name])
		}
		h, ok := products[path.Clean(name)]
		if !ok {
			return refuse("final product "+name, "not among the products of step %q", last)
		}
		got, ok := h[alg]
		if !ok {
			return refuse("final product "+name, "step %q recorded no %s hash", last, alg)
		}
		if !strings.EqualFold(got, hex) {
			return refuse("final product "+name, "%s:%s, step %q produced %s:%s", alg, hex, last, alg, got)
		}
	}
	return nil
}

func refuse(where, format string, args ...any) error {
	return fmt.Errorf("%w: %s: "+format, append([]any{ErrVerification, where}, args...)...)
}

// distinctSigners counts the functionaries behind a step's verified links:
// a layout key counts once by its ID, a certificate once by its bytes, and a
// link whose claimed key ID has no signature of that ID counts for nothing.
func distinctSigners(step in_toto.Step, links map[string]in_toto.Metadata) int {
	authorized := map[string]bool{}
	for _, id := range step.PubKeys {
		authorized[id] = true
	}
	signers := map[string]bool{}
	for keyID, m := range links {
		for _, sig := range m.Sigs() {
			if sig.KeyID != keyID {
				continue
			}
			switch {
			case sig.Certificate != "":
				sum := sha256.Sum256([]byte(strings.TrimSpace(sig.Certificate)))
				signers["cert:"+hex.EncodeToString(sum[:])] = true
			case authorized[keyID]:
				signers["key:"+keyID] = true
			}
		}
	}
	return len(signers)
}
