package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// hashLimits is Go's SHA-256 throughput over one exported archive.
type hashLimits struct {
	single, parallel float64 // MB/s with one stream, and one per CPU
}

// exportReport, verifyReport and importReport are the parts of relocate's
// --json output the bench checks. Decoding them here, rather than importing
// the library's types, tests the CLI's documented contract.
type exportReport struct {
	Bytes int64 `json:"bytes"`
}

type verifyReport struct {
	Verdict string `json:"verdict"`
}

type importReport struct {
	Verdict     string `json:"verdict"`
	BlobsPushed int    `json:"blobsPushed"`
	BytesPushed int64  `json:"bytesPushed"`
}

// archiveName is the file relocateRun exports into its directory.
const archiveName = "set.tar"

// relocateRun measures export, verify, import and re-import of set into a
// fresh registry under dir, and Go's SHA-256 over the archive it exported.
func (b *bench) relocateRun(ctx context.Context, dir string, set *dataset) (map[op]sample, hashLimits, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, hashLimits{}, fmt.Errorf("relocate: %w", err)
	}
	ops := map[op]sample{}
	archive := filepath.Join(dir, archiveName)
	hash, err := b.relocateExport(ctx, archive, set, ops)
	if err != nil {
		return nil, hashLimits{}, err
	}
	if err := b.relocateImport(ctx, filepath.Join(dir, "dst"), archive, set, ops); err != nil {
		return nil, hashLimits{}, err
	}
	return ops, hash, nil
}

// relocateExport exports and verifies the archive. The SHA-256 limit is
// taken between the two, over the very file verify then reads.
func (b *bench) relocateExport(ctx context.Context, archive string, set *dataset, ops map[op]sample) (hashLimits, error) {
	export := cmd(b.tools.relocate, append([]string{"export", "-o", archive, "--plain-http", "--json", "-q"}, set.refs()...)...)
	var er exportReport
	if err := b.step(ctx, relExport, export, &er, ops); err != nil {
		return hashLimits{}, err
	}
	if er.Bytes != set.uniqueBytes() {
		b.res.notef("relocate export reported %d bytes; the set's unique blobs and manifests add up to %d.", er.Bytes, set.uniqueBytes())
	}
	var hash hashLimits
	var err error
	if hash.single, err = hashFileMBs(archive); err != nil {
		return hashLimits{}, err
	}
	if hash.parallel, err = hashFileParallelMBs(archive, runtime.NumCPU()); err != nil {
		return hashLimits{}, err
	}

	var vr verifyReport
	if err := b.step(ctx, relVerify, cmd(b.tools.relocate, "verify", archive, "--json", "-q"), &vr, ops); err != nil {
		return hashLimits{}, err
	}
	if vr.Verdict != "ok" {
		return hashLimits{}, fmt.Errorf("relocate verify %s: verdict %q", archive, vr.Verdict)
	}
	return hash, nil
}

// relocateImport imports the archive into a fresh registry in dir, checks
// the digests there, and imports it again into the now full registry.
func (b *bench) relocateImport(ctx context.Context, dir, archive string, set *dataset, ops map[op]sample) error {
	dst, err := b.startRegistry(ctx, dir)
	if err != nil {
		return err
	}
	defer b.stopRegistry(dst)
	imp := cmd(b.tools.relocate, "import", archive, "--to", dst.Host, "--plain-http", "--json", "-q")
	for _, o := range []op{relImport, relReimport} {
		var ir importReport
		if err := b.step(ctx, o, imp, &ir, ops); err != nil {
			return err
		}
		if ir.Verdict != "ok" {
			return fmt.Errorf("%s: verdict %q", o, ir.Verdict)
		}
		if err := checkDigests(ctx, dst.Host, set.images); err != nil {
			return fmt.Errorf("%s: %w", o, err)
		}
		if o == relReimport && ir.BytesPushed != 0 {
			b.res.notef("relocate re-import pushed %d bytes (%d blobs) although everything was present.", ir.BytesPushed, ir.BlobsPushed)
		}
	}
	return nil
}

// step runs one relocate command, records its sample and decodes its report.
func (b *bench) step(ctx context.Context, o op, c command, report any, ops map[op]sample) error {
	var out []byte
	s, err := b.withRegistryCPU(func() (s sample, err error) {
		s, out, err = c.run(ctx)
		return s, err
	})
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
	s, err := b.withRegistryCPU(func() (sample, error) { return runAll(ctx, cmds) })
	if err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	b.res.add(o, s)
	b.logSample(o, s)
	return nil
}
