// Command demo shows relocate end to end on one machine: it starts two local
// registries (a "connected" source and an "airgapped" destination), pushes
// sample images to the source, and runs export → verify → import with the
// real relocate binary, printing each command and what it reported.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testregistry"
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
	for _, s := range []testimages.Spec{
		{Repo: "shop/frontend", Tag: "1.4", Count: 1, Layers: 3, LayerSize: 2 << 20, Shared: 1, Docker: true, Seed: 7},
		{Repo: "shop/backend", Tag: "2.0", Count: 1, Layers: 2, LayerSize: 2 << 20, Shared: 1, Docker: true, Seed: 7},
		{Repo: "base/runtime", Tag: "2026.11", Count: 1, Layers: 2, LayerSize: 1 << 20, Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Seed: 8},
	} {
		ims, err := testimages.Push(ctx, src.Host, s)
		if err != nil {
			return err
		}
		for _, im := range ims {
			fmt.Printf("  %s  %s\n", im.Ref, im.Digest)
			refs = append(refs, im.Ref)
		}
	}

	archive := filepath.Join(dir, "site.tar.zst")
	step("Export: one compressed OCI-layout archive (what goes on the removable media)")
	if err := relocate(bin, append([]string{"export", "-o", archive, "--plain-http"}, refs...)...); err != nil {
		return err
	}
	step("Inspect: what the archive holds")
	if err := relocate(bin, "inspect", archive); err != nil {
		return err
	}
	step("Verify: every digest, size and reference, offline")
	if err := relocate(bin, "verify", archive); err != nil {
		return err
	}
	step("Import into the airgapped registry under the prefix 'mirror'")
	mapping := filepath.Join(dir, "mapping.json")
	if err := relocate(bin, "import", archive, "--to", dst.Host+"/mirror", "--plain-http", "--mapping", mapping); err != nil {
		return err
	}
	m, _ := os.ReadFile(mapping)
	fmt.Printf("  relocation mapping:\n%s", indent(string(m)))
	step("Import again: everything is already there, nothing is pushed")
	if err := relocate(bin, "import", archive, "--to", dst.Host+"/mirror", "--plain-http"); err != nil {
		return err
	}

	step("A tampered archive is refused (exit code 3)")
	bad := filepath.Join(dir, "tampered.tar")
	if err := relocate(bin, "export", "-o", filepath.Join(dir, "plain.tar"), "--plain-http", "-q", refs[0]); err != nil {
		return err
	}
	if err := flipLastLayerByte(filepath.Join(dir, "plain.tar"), bad); err != nil {
		return err
	}
	err = relocate(bin, "verify", bad)
	var ee *exec.ExitError
	if err == nil || !asExit(err, &ee) || ee.ExitCode() != 3 {
		return fmt.Errorf("the tampered archive was not refused with exit code 3: %v", err)
	}
	fmt.Println("  refused with exit code 3, as it should be.")
	step("Done: the same digests on both sides; see README.md for more")
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

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
