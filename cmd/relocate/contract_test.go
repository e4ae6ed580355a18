package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestScriptContract: --json prints exactly one JSON document on stdout for
// every outcome, usage mistakes exit 2 and say why, help and the version go
// to stdout. None of it needs a registry.
func TestScriptContract(t *testing.T) {
	notArchive := writeFile(t, "notes.txt", []byte(strings.Repeat("not an archive\n", 100)))
	tests := []struct {
		name     string
		args     []string
		code     int
		kind     string // of the JSON error document; "" = no error document
		stderr   string
		registry string
	}{
		{"unknown command", []string{"frobnicate", "--json"}, exitUsage, "usage", `unknown command "frobnicate"`, ""},
		{"unknown flag", []string{"verify", "--bogus", "a.tar", "--json"}, exitUsage, "usage", "bogus", ""},
		{"reference without a registry", []string{"export", "-o", "x.tar", "alpine:3.20", "--json"}, exitUsage, "usage", `"alpine:3.20" names no registry: write it in full, e.g. docker.io/library/alpine:3.20`, ""},
		{"reference that is a path", []string{"export", "-o", "x.tar", "reg.example/a/../b:1", "--json"}, exitUsage, "usage", `segment ".." is not a name component`, ""},
		{"reference that does not parse", []string{"export", "-o", "x.tar", "reg.example/UPPER:1", "--json"}, exitUsage, "usage", `reference "reg.example/UPPER:1"`, ""},
		{"malformed --to", []string{"import", "x.tar", "--to", "reg.example//x", "--json"}, exitUsage, "usage", "--to reg.example//x", ""},
		{"missing archive", []string{"verify", filepath.Join(t.TempDir(), "absent.tar"), "--json"}, exitFailure, "operational", "no such file", ""},
		{"registry unreachable", []string{"export", "-o", filepath.Join(t.TempDir(), "x.tar"), "127.0.0.1:1/team/app:1", "--plain-http", "--json"}, exitFailure, "operational", "127.0.0.1:1", "127.0.0.1:1"},
		{"not an archive", []string{"verify", notArchive, "--json"}, exitRefused, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := relocateCmd(t, nil, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d with %q:\n%s", r.code, tc.code, tc.stderr, r.stderr)
			}
			dec := json.NewDecoder(strings.NewReader(r.stdout))
			var doc map[string]json.RawMessage
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
			}
			if dec.More() {
				t.Errorf("more than one JSON document on stdout:\n%s", r.stdout)
			}
			if tc.kind == "" {
				if _, ok := doc["error"]; ok {
					t.Errorf("an error document besides the report:\n%s", r.stdout)
				}
				return
			}
			var e jsonError
			json.Unmarshal([]byte(r.stdout), &e)
			if e.Error.Kind != tc.kind || e.Error.Code != tc.code || e.Error.Message == "" || e.Error.Registry != tc.registry {
				t.Errorf("error document %+v, want kind %s, code %d, registry %q", e.Error, tc.kind, tc.code, tc.registry)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}, {"help"}, {"import", "--help"}} {
		r := relocateCmd(t, nil, args...)
		if r.code != 0 || r.stdout == "" || r.stderr != "" {
			t.Errorf("relocate %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	r := relocateCmd(t, nil, "version", "--json")
	var v struct{ Version string }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version == "" {
		t.Errorf("version --json: %v %q", err, r.stdout)
	}
	for _, cmd := range []string{"export", "verify", "import", "inspect", "version"} {
		if r := relocateCmd(t, nil, cmd, "-q", "--help"); r.code != 0 {
			t.Errorf("%s -q: exit %d\n%s", cmd, r.code, r.stderr)
		}
	}
}
