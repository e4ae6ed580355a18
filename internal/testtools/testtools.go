// Package testtools finds the signing tools that end-to-end tests drive
// (cosign, notation, oras, crane), as internal/tools/install.sh builds them.
//
// A tool is looked up, in order, in $RELOCATE_<TOOL> (a path to the binary,
// e.g. RELOCATE_COSIGN), in the tools cache
// ${RELOCATE_TOOLS_DIR:-$HOME/.cache/relocate/tools}, then on PATH. A test
// that needs an absent tool is skipped, unless RELOCATE_REQUIRE_TOOLS=1 (as
// in CI), where it fails: a CI run must not pass by skipping the proof.
package testtools

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tools install.sh builds.
const (
	Cosign   = "cosign"
	Notation = "notation"
	Oras     = "oras"
	Crane    = "crane"
)

// RequireEnv makes a missing tool a test failure instead of a skip.
const RequireEnv = "RELOCATE_REQUIRE_TOOLS"

// Dir is the tools cache install.sh fills.
func Dir() string {
	if d := os.Getenv("RELOCATE_TOOLS_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "relocate", "tools")
}

// Find returns the path of a tool, or an error saying where it looked and
// how to build it.
func Find(tool string) (string, error) {
	env := "RELOCATE_" + strings.ToUpper(tool)
	if p := os.Getenv(env); p != "" {
		if isExec(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s=%s is not an executable file", env, p)
	}
	if d := Dir(); d != "" {
		if p := filepath.Join(d, tool); isExec(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in $%s, %s or PATH (run `make tools` or internal/tools/install.sh %s)", tool, env, Dir(), tool)
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Need returns the path of tool for t, skipping t when it is absent (or
// failing it when RELOCATE_REQUIRE_TOOLS=1). Tools are external processes,
// so it also skips under -short.
func Need(t testing.TB, tool string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: skipped with -short (drives an external tool)", tool)
	}
	p, err := Find(tool)
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v, and %s=1", err, RequireEnv)
		}
		t.Skip(err)
	}
	return p
}

// Run runs a tool and fails t with its output when it exits non-zero.
// env entries are added to a copy of the test's environment.
func Run(t testing.TB, ctx context.Context, env []string, bin string, args ...string) string {
	t.Helper()
	out, err := Output(ctx, env, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return out
}

// Output runs a tool and returns its combined output and error, for tests
// that expect a tool to fail.
func Output(ctx context.Context, env []string, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
