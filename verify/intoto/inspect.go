package intoto

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/in-toto/in-toto-golang/in_toto"
)

// maxInspectionOutput caps what is kept of an inspection's stdout and stderr.
const maxInspectionOutput = 1 << 20

// recordMu serializes in_toto.RecordArtifacts, which keeps its symlink-cycle
// bookkeeping in a package variable of in-toto-golang: two concurrent
// Verify calls with RunInspections would otherwise race on it.
var recordMu sync.Mutex

// inspect runs the layout's inspections one after the other in one fresh
// directory (in-toto-verify runs them in sequence in its working directory),
// then applies their artifact rules against their links and the steps'.
//
// in_toto.RunInspections is not used: it records paths with the run
// directory as prefix (so no rule matches), has no timeout and writes
// "<name>.link" into the process's working directory.
func (v *verifier) inspect(lay in_toto.Layout, steps map[string]in_toto.Metadata, where, prefix string) error {
	dir, err := os.MkdirTemp("", "relocate-inspection-*")
	if err != nil {
		return fmt.Errorf("in-toto: inspections: %w", err)
	}
	defer os.RemoveAll(dir)
	if v.o.InspectionFiles != nil {
		if err := os.CopyFS(dir, v.o.InspectionFiles); err != nil {
			return fmt.Errorf("in-toto: inspection files: %w", err)
		}
	}

	all := maps.Clone(steps)
	items := make([]any, len(lay.Inspect))
	for i, in := range lay.Inspect {
		link, err := runInspection(dir, in, v.o.InspectionTimeout)
		if err != nil {
			return refuse(where, "inspection %q: %w", in.Name, err)
		}
		all[in.Name] = link
		items[i] = in
		v.res.InspectionsRun = append(v.res.InspectionsRun, prefix+in.Name)
	}
	if err := in_toto.VerifyArtifacts(items, all); err != nil {
		return refuse(where, "%w", err)
	}
	return nil
}

// runInspection does what in_toto.InTotoRun does for an inspection
// (materials, command, products, an unsigned link) with a timeout.
func runInspection(dir string, in in_toto.Inspection, timeout time.Duration) (in_toto.Metadata, error) {
	if len(in.Run) == 0 {
		return nil, in_toto.ErrEmptyCommandArgs
	}
	materials, err := recordArtifacts(dir)
	if err != nil {
		return nil, fmt.Errorf("materials: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.Run[0], in.Run[1:]...)
	cmd.Dir = dir
	var stdout, stderr cappedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	isolate(cmd)
	// A grandchild holding the output pipes must not keep Wait (and us) past the timeout.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%q timed out after %s", in.Run, timeout)
	}
	code := 0
	if exitErr := (*exec.ExitError)(nil); errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		return nil, fmt.Errorf("%q: %w", in.Run, err)
	}
	if code != 0 {
		return nil, fmt.Errorf("%q exited with %d: %s", in.Run, code, stderr.b)
	}

	products, err := recordArtifacts(dir)
	if err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	link := in_toto.Link{
		Type:      "link",
		Name:      in.Name,
		Materials: materials,
		Products:  products,
		ByProducts: map[string]any{
			"return-value": float64(code),
			"stdout":       string(stdout.b),
			"stderr":       string(stderr.b),
		},
		Command:     in.Run,
		Environment: map[string]any{},
	}
	return &in_toto.Metablock{Signed: link, Signatures: []in_toto.Signature{}}, nil
}

// recordArtifacts hashes every file under dir with paths relative to it, as
// in-toto records "." in its working directory.
func recordArtifacts(dir string) (map[string]in_toto.HashObj, error) {
	recordMu.Lock()
	defer recordMu.Unlock()
	return in_toto.RecordArtifacts([]string{dir}, []string{"sha256"}, nil,
		[]string{dir + string(filepath.Separator)}, false, false)
}

// cappedBuffer keeps the first maxInspectionOutput bytes and swallows the
// rest, so a chatty command neither grows memory nor fails on a short write.
type cappedBuffer struct{ b []byte }

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := maxInspectionOutput - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
