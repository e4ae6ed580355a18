package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	cranePkg    = "github.com/google/go-containerregistry/cmd/crane"
	craneModule = "github.com/google/go-containerregistry"
	skopeoBin   = "skopeo"
)

// tools are the binaries under test. skopeo is "" when not installed.
type tools struct {
	relocate, crane, skopeo string
	craneVersion            string
	skopeoVersion           string
}

// buildTools compiles relocate from this checkout and crane at the version
// go.mod requires, so the comparison uses the same registry client library.
func buildTools(ctx context.Context, modRoot, binDir string) (tools, error) {
	t := tools{
		relocate: filepath.Join(binDir, "relocate"),
		crane:    filepath.Join(binDir, "crane"),
	}
	build := command{dir: modRoot, name: "go", args: []string{"build", "-o", t.relocate, "./cmd/relocate"}}
	if _, _, err := build.run(ctx); err != nil {
		return tools{}, fmt.Errorf("build relocate: %w", err)
	}
	var err error
	if t.craneVersion, err = moduleVersion(ctx, modRoot, craneModule); err != nil {
		return tools{}, err
	}
	if err := buildCrane(ctx, modRoot, binDir, t.craneVersion); err != nil {
		return tools{}, err
	}
	t.skopeo, t.skopeoVersion = findSkopeo(ctx)
	return t, nil
}

// buildCrane builds crane inside the module when go.sum covers its
// dependencies (cobra is not a dependency of relocate, so usually it does
// not); otherwise it installs the same version in module mode.
func buildCrane(ctx context.Context, modRoot, binDir, version string) error {
	inModule := command{dir: modRoot, name: "go", args: []string{"build", "-o", filepath.Join(binDir, "crane"), cranePkg}}
	if _, _, err := inModule.run(ctx); err == nil {
		return nil
	}
	install := command{
		dir:  binDir, // outside the module, so its go.mod does not apply
		env:  []string{"GOBIN=" + binDir, "GOFLAGS=", "GOWORK=off"},
		name: "go",
		args: []string{"install", cranePkg + "@" + version},
	}
	if _, _, err := install.run(ctx); err != nil {
		return fmt.Errorf("build crane %s: %w", version, err)
	}
	return nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	_, out, err := cmd("go", "env", "GOMOD").run(ctx)
	if err != nil {
		return "", fmt.Errorf("locate module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module: run from the relocate checkout")
	}
	return filepath.Dir(gomod), nil
}

func moduleVersion(ctx context.Context, modRoot, module string) (string, error) {
	c := command{dir: modRoot, name: "go", args: []string{"list", "-m", "-f", "{{.Version}}", module}}
	_, out, err := c.run(ctx)
	if err != nil {
		return "", fmt.Errorf("version of %s: %w", module, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// findSkopeo returns skopeo's path and version, or "" if it is not installed:
// it is an optional peer.
func findSkopeo(ctx context.Context) (path, version string) {
	path, err := exec.LookPath(skopeoBin)
	if err != nil {
		return "", ""
	}
	_, out, err := cmd(path, "--version").run(ctx)
	if err != nil {
		return "", ""
	}
	return path, strings.TrimSpace(strings.TrimPrefix(string(out), "skopeo version "))
}
