package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// exportReport, verifyReport and importReport are the parts of relocate's
// --json output the bench checks. Decoding them here, rather than importing
// the library's types, tests the CLI's documented contract.
type exportReport struct {
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

type verifyReport struct {
	Verdict string `json:"verdict"`
}

type importReport struct {
	Verdict      string `json:"verdict"`
	BlobsPushed  int    `json:"blobsPushed"`
	BlobsMounted int    `json:"blobsMounted"`
	BlobsSkipped int    `json:"blobsSkipped"`
	BytesPushed  int64  `json:"bytesPushed"`
}

// relocateRun measures export, verify, import and re-import of set into a
// fresh registry under dir, and Go's SHA-256 over the archive it exported.
func (b *bench) relocateRun(ctx context.Context, dir string, set *dataset) (map[op]sample, float64, error) {
	ops := map[op]sample{}
	archive := filepath.Join(dir, "set.tar")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, fmt.Errorf("relocate: %w", err)
	}

	export := cmd(b.tools.relocate, append([]string{"export", "-o", archive, "--plain-http", "--json", "-q"}, set.refs()...)...)
	var er exportReport
	if err := b.step(ctx, relExport, export, &er, ops); err != nil {
		return nil, 0, err
	}
	if er.Bytes != set.uniqueBytes() {
		b.res.notef("relocate export reported %d bytes; the set's unique blobs and manifests add up to %d.", er.Bytes, set.uniqueBytes())
	}
	hashMBs, err := hashFileMBs(archive)
	if err != nil {
		return nil, 0, err
	}

	var vr verifyReport
	if err := b.step(ctx, relVerify, cmd(b.tools.relocate, "verify", archive, "--json", "-q"), &vr, ops); err != nil {
		return nil, 0, err
	}
	if vr.Verdict != "ok" {
		return nil, 0, fmt.Errorf("relocate verify %s: verdict %q", archive, vr.Verdict)
	}

	dst, err := b.startRegistry(ctx, filepath.Join(dir, "dst"))
	if err != nil {
		return nil, 0, err
	}
	defer b.stopRegistry(dst)
	imp := cmd(b.tools.relocate, "import", archive, "--to", dst.Host, "--plain-http", "--json", "-q")
	var first, again importReport
	if err := b.step(ctx, relImport, imp, &first, ops); err != nil {
		return nil, 0, err
	}
	if err := checkDigests(ctx, dst.Host, set.images); err != nil {
		return nil, 0, fmt.Errorf("relocate import: %w", err)
	}
	if err := b.step(ctx, relReimport, imp, &again, ops); err != nil {
		return nil, 0, err
	}
	if again.BytesPushed != 0 {
		b.res.notef("relocate re-import pushed %d bytes (%d blobs) although everything was present.", again.BytesPushed, again.BlobsPushed)
	}
	return ops, hashMBs, nil
}

// step runs one relocate command, records its sample and decodes its report.
func (b *bench) step(ctx context.Context, o op, c command, report any, ops map[op]sample) error {
	s, out, err := c.run(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	if err := json.Unmarshal(out, report); err != nil {
		return fmt.Errorf("%s: decode --json report: %w", o, err)
	}
	ops[o] = s
	b.logSample(o, s)
	return nil
}

// craneRun measures crane pull of the whole set into one OCI layout, then
// crane push of per-image layouts into a fresh registry, one after another
// as a shell loop would (crane push takes one image per call), and again.
func (b *bench) craneRun(ctx context.Context, dir string, set *dataset) error {
	args := append([]string{"pull", "--format=oci", "--insecure"}, set.refs()...)
	pull := cmd(b.tools.crane, append(args, filepath.Join(dir, "layout"))...)
	if err := b.measureOne(ctx, cranePull, []command{pull}); err != nil {
		return err
	}
	// The combined layout only served the timing; drop it to bound disk use.
	if err := os.RemoveAll(filepath.Join(dir, "layout")); err != nil {
		return fmt.Errorf("crane: %w", err)
	}

	layouts, err := b.cranePerImageLayouts(ctx, set)
	if err != nil {
		return err
	}
	dst, err := b.startRegistry(ctx, filepath.Join(dir, "dst"))
	if err != nil {
		return err
	}
	defer b.stopRegistry(dst)
	pushes := make([]command, len(set.images))
	for i, im := range set.images {
		pushes[i] = cmd(b.tools.crane, "push", "--insecure", layouts[i], onHost(dst.Host, im.Ref))
	}
	if err := b.measureOne(ctx, cranePush, pushes); err != nil {
		return err
	}
	if err := checkDigests(ctx, dst.Host, set.images); err != nil {
		b.res.notef("crane push: %v", err)
	}
	return b.measureOne(ctx, craneRepush, pushes)
}

// cranePerImageLayouts pulls each image into its own layout, untimed,
// since crane push needs one image per layout. They are the same in every
// run, so they are pulled once.
func (b *bench) cranePerImageLayouts(ctx context.Context, set *dataset) ([]string, error) {
	dirs := make([]string, len(set.images))
	for i, im := range set.images {
		dirs[i] = filepath.Join(b.workdir, "crane-images", fmt.Sprintf("image-%d", i))
		if _, err := os.Stat(filepath.Join(dirs[i], "index.json")); err == nil {
			continue
		}
		pull := cmd(b.tools.crane, "pull", "--format=oci", "--insecure", im.Ref, dirs[i])
		if _, _, err := pull.run(ctx); err != nil {
			return nil, fmt.Errorf("crane per-image layouts: %w", err)
		}
	}
	return dirs, nil
}

// skopeoRun measures skopeo copying each image to its own oci-archive
// (skopeo copies one image per call) and back into a fresh registry.
func (b *bench) skopeoRun(ctx context.Context, dir string, set *dataset) error {
	tmp := filepath.Join(dir, "tmp") // skopeo unpacks oci-archives here
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("skopeo: %w", err)
	}
	skopeo := func(args ...string) command {
		return cmd(b.tools.skopeo, append([]string{"--insecure-policy", "--tmpdir", tmp, "copy", "-q"}, args...)...)
	}
	archives := make([]string, len(set.images))
	outs := make([]command, len(set.images))
	for i, im := range set.images {
		archives[i] = filepath.Join(dir, fmt.Sprintf("image-%d.tar", i))
		outs[i] = skopeo("--src-tls-verify=false", "docker://"+im.Ref, "oci-archive:"+archives[i])
	}
	if err := b.measureOne(ctx, skopeoOut, outs); err != nil {
		return err
	}

	dst, err := b.startRegistry(ctx, filepath.Join(dir, "dst"))
	if err != nil {
		return err
	}
	defer b.stopRegistry(dst)
	ins := make([]command, len(set.images))
	for i, im := range set.images {
		ins[i] = skopeo("--dest-tls-verify=false", "oci-archive:"+archives[i], "docker://"+onHost(dst.Host, im.Ref))
	}
	if err := b.measureOne(ctx, skopeoIn, ins); err != nil {
		return err
	}
	if err := checkDigests(ctx, dst.Host, set.images); err != nil {
		b.res.notef("skopeo copy: %v", err)
	}
	return nil
}

// measureOne runs cmds as one timed operation and records it.
func (b *bench) measureOne(ctx context.Context, o op, cmds []command) error {
	s, err := runAll(ctx, cmds)
	if err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	b.res.add(o, s)
	b.logSample(o, s)
	return nil
}
