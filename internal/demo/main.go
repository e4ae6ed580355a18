// Command demo shows relocate end to end on one machine: it starts two local
// registries (a "connected" source and an "airgapped" destination), pushes
// sample images to the source, signs them, attaches SBOMs, publishes a TUF
// repository that vouches for them, and runs export → verify → import with
// the real relocate binary, printing each command and what it reported.
//
// The images are signed in process, in cosign's `.sig` format (an ECDSA
// P-256 signature over the simple-signing payload), rather than with the
// cosign CLI: `make demo` needs no tool beyond the registry. The site's
// policy requires that key, as `cosign verify --key` would.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testregistry"
	"github.com/relocate-dev/relocate/internal/testtuf"
)

func main() {
	bin := flag.String("relocate", "bin/relocate", "the relocate binary to run")
	flag.Parse()
	if err := run(context.Background(), *bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "relocate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("Starting two local registries (CNCF distribution on 127.0.0.1)")
	src, err := testregistry.Start(ctx, filepath.Join(dir, "connected"))
	if err != nil {
		return err
	}
	defer src.Stop()
	dst, err := testregistry.Start(ctx, filepath.Join(dir, "airgapped"))
	if err != nil {
		return err
	}
	defer dst.Stop()
	fmt.Printf("  connected side: %s\n  airgapped side: %s\n", src.Host, dst.Host)

	step("Pushing sample images to the connected registry")
	var refs []string
	var ims []testimages.Image
	for _, s := range []testimages.Spec{
		{Repo: "shop/frontend", Tag: "1.4", Count: 1, Layers: 3, LayerSize: 2 << 20, Shared: 1, Docker: true, Seed: 7},
		{Repo: "shop/backend", Tag: "2.0", Count: 1, Layers: 2, LayerSize: 2 << 20, Shared: 1, Docker: true, Seed: 7},
		{Repo: "base/runtime", Tag: "2026.11", Count: 1, Layers: 2, LayerSize: 1 << 20, Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Seed: 8},
	} {
		pushed, err := testimages.Push(ctx, src.Host, s)
		if err != nil {
			return err
		}
		for _, im := range pushed {
			fmt.Printf("  %s  %s\n", im.Ref, im.Digest)
			refs = append(refs, im.Ref)
		}
		ims = append(ims, pushed...)
	}

	step("Signing them (cosign's .sig format, key in process) and attaching an SBOM to each (OCI 1.1 referrer)")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	policy, err := writePolicy(dir, src.Host, key)
	if err != nil {
		return err
	}
	for _, im := range ims {
		repo := im.Ref[:strings.LastIndex(im.Ref, ":")]
		if _, err := testimages.Sign(ctx, repo, im.Digest, key); err != nil {
			return err
		}
		subject := v1.Descriptor{MediaType: types.MediaType(im.MediaType), Digest: mustHash(im.Digest), Size: im.Size}
		if _, err := testimages.Attach(ctx, repo, subject, "application/spdx+json", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`)); err != nil {
			return err
		}
	}

	step("Publishing a TUF repository that vouches for every image (target = reference, hashes = manifest digest)")
	tufURL, root, stop, err := serveTUF(dir, ims)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("  TUF metadata at %s; its root, pinned out of band: %s\n", tufURL, root)

	archive := filepath.Join(dir, "site.tar.zst")
	step("Export: one compressed OCI-layout archive with signatures, SBOMs and the TUF chain")
	if err := relocate(bin, append([]string{"export", "-o", archive, "--plain-http", "--tuf", "demo=" + tufURL, "--tuf-root", "demo=" + root}, refs...)...); err != nil {
		return err
	}
	step("Inspect: what the archive holds")
	if err := relocate(bin, "inspect", archive); err != nil {
		return err
	}
	state := filepath.Join(dir, "site-state")
	pol, _ := os.ReadFile(policy)
	fmt.Printf("  the site's policy (%s):\n%s", policy, indent(string(pol)))
	step("Verify: every digest, size and reference, the TUF chain from the pinned root, every image's cosign signature under the site's key")
	if err := relocate(bin, "verify", archive, "--state", state, "--trust", "demo="+root, "--policy", policy, "--require-signatures"); err != nil {
		return err
	}
	step("Import into the airgapped registry under the prefix 'mirror' (first import: pin the root)")
	mapping := filepath.Join(dir, "mapping.json")
	if err := relocate(bin, "import", archive, "--to", dst.Host+"/mirror", "--plain-http", "--mapping", mapping, "--state", state, "--trust", "demo="+root, "--policy", policy, "--require-signatures"); err != nil {
		return err
	}
	m, _ := os.ReadFile(mapping)
	fmt.Printf("  relocation mapping:\n%s", indent(string(m)))
	step("Import again: the site's state knows the repository now; everything is there, nothing is pushed")
	if err := relocate(bin, "import", archive, "--to", dst.Host+"/mirror", "--plain-http", "--state", state, "--policy", policy); err != nil {
		return err
	}
	audit, _ := os.ReadFile(filepath.Join(state, "audit.log"))
	fmt.Printf("  audit log (%s):\n%s", filepath.Join(state, "audit.log"), indent(string(audit)))

	step("An unsigned image is refused by the keyed cosign policy (exit code 3), before anything is pushed")
	unsigned, err := testimages.Push(ctx, src.Host, testimages.Spec{Repo: "shop/unsigned", Tag: "0.1", Count: 1, Layers: 1, LayerSize: 256 << 10, Seed: 9})
	if err != nil {
		return err
	}
	plain := filepath.Join(dir, "unsigned.tar")
	if err := relocate(bin, "export", "-o", plain, "--plain-http", "-q", unsigned[0].Ref); err != nil {
		return err
	}
	err = relocate(bin, "import", plain, "--to", dst.Host+"/mirror", "--plain-http", "--state", filepath.Join(dir, "other-site"), "--policy", policy)
	var ee *exec.ExitError
	if err == nil || !asExit(err, &ee) || ee.ExitCode() != 3 {
		return fmt.Errorf("the unsigned image was not refused with exit code 3: %v", err)
	}
	fmt.Println("  refused with exit code 3: no cosign signature, nothing pushed.")

	step("A tampered archive is refused (exit code 3)")
	bad := filepath.Join(dir, "tampered.tar")
	if err := relocate(bin, "export", "-o", filepath.Join(dir, "plain.tar"), "--plain-http", "-q", refs[0]); err != nil {
		return err
	}
	if err := flipLastLayerByte(filepath.Join(dir, "plain.tar"), bad); err != nil {
		return err
	}
	err = relocate(bin, "verify", bad)
	if err == nil || !asExit(err, &ee) || ee.ExitCode() != 3 {
		return fmt.Errorf("the tampered archive was not refused with exit code 3: %v", err)
	}
	fmt.Println("  refused with exit code 3, as it should be.")
	step("Done: the same digests on both sides; see README.md for more")
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

// writePolicy writes the site's policy: every image from the connected
// registry must carry a cosign signature by key (its public half is
// written beside the policy, which names it by a relative path).
func writePolicy(dir, host string, key *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "site-policy.json")
	doc := `{
  "signatures": [
    {"paths": ["` + host + `/*"],
     "require": [{"name": "release key", "cosign": {"keys": ["release.pub"]}}]}
  ]
}
`
	return p, os.WriteFile(p, []byte(doc), 0o644)
}

func relocate(bin string, args ...string) error {
	fmt.Printf("$ relocate %s\n", strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	return cmd.Run()
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

// flipLastLayerByte copies an uncompressed archive with one byte of its last
// entry (a layer: layers come last) changed.
func flipLastLayerByte(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	// The archive ends with padding and two zero blocks; the byte 2 KiB
	// before the end lies in the last layer's content for these sizes.
	data[len(data)-2048] ^= 0xff
	return os.WriteFile(to, data, 0o644)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ") + "\n"
}

func mustHash(s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		panic(err)
	}
	return h
}

// serveTUF publishes a TUF repository (made with go-tuf's metadata API) that
// vouches for the images, on 127.0.0.1, and writes its root to a file.
func serveTUF(dir string, ims []testimages.Image) (url, root string, stop func(), err error) {
	repo, err := testtuf.New(testtuf.Options{Delegations: []testtuf.Delegation{{Name: "releases", Paths: []string{"*/*/*"}}}})
	if err != nil {
		return "", "", nil, err
	}
	for _, im := range ims {
		if err := repo.AddTarget("releases", im.Ref, strings.TrimPrefix(im.Digest, "sha256:"), im.Size, nil); err != nil {
			return "", "", nil, err
		}
	}
	if err := repo.Publish(); err != nil {
		return "", "", nil, err
	}
	root = filepath.Join(dir, "demo-root.json")
	if err := os.WriteFile(root, repo.Root(1), 0o644); err != nil {
		return "", "", nil, err
	}
	files := repo.Files()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Files are named with the role path-escaped, as go-tuf asks for them.
		b, ok := files[neturl.PathEscape(strings.TrimPrefix(r.URL.Path, "/"))]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	})}
	go srv.Serve(l)
	return "http://" + l.Addr().String(), root, func() { srv.Close() }, nil
}
