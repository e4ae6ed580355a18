package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relocate-dev/relocate/internal/testregistry"
)

// site is a registry as sites run them: TLS from a private CA, htpasswd
// users, perhaps client certificates; and every run of relocate against
// it, so that no run can be found printing the password.
type site struct {
	t        *testing.T
	reg      *testregistry.Registry
	ca       *testregistry.CA
	caFile   string
	password string
	runs     []result
}

const siteUser = "site"

func newSite(t *testing.T, clientCAs ...*testregistry.CA) *site {
	t.Helper()
	needRegistries(t)
	ca, err := testregistry.NewCA("site CA")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 12)
	rand.Read(b)
	s := &site{t: t, ca: ca, password: "pw-" + hex.EncodeToString(b)}
	s.reg = testregistry.NewWith(t, testregistry.Options{TLS: ca, ClientCAs: clientCAs, Users: map[string]string{siteUser: s.password}})
	s.caFile = writeFile(t, "site-ca.pem", ca.PEM)
	t.Cleanup(s.checkNoLeak)
	return s
}

// run runs relocate with stdin and records the run.
func (s *site) run(stdin string, args ...string) result {
	s.t.Helper()
	r := relocateCmd(s.t, strings.NewReader(stdin), args...)
	s.runs = append(s.runs, r)
	return r
}

// want checks a run's exit code and that its stderr holds every one of
// msgs.
func (s *site) want(what string, r result, code int, msgs ...string) {
	s.t.Helper()
	ok := r.code == code
	for _, m := range msgs {
		ok = ok && strings.Contains(r.stderr, m)
	}
	if !ok {
		s.t.Fatalf("%s: exit %d, want %d with %q\nstderr:\n%s", what, r.code, code, msgs, r.stderr)
	}
}

// checkNoLeak: the password never appears in any output, in clear or as
// docker's base64 user:password, whatever the outcome.
func (s *site) checkNoLeak() {
	if len(s.runs) == 0 {
		return
	}
	forms := []string{s.password, base64.StdEncoding.EncodeToString([]byte(siteUser + ":" + s.password)), base64.StdEncoding.EncodeToString([]byte(s.password))}
	for i, r := range s.runs {
		for _, f := range forms {
			if strings.Contains(r.stdout, f) || strings.Contains(r.stderr, f) {
				s.t.Errorf("run %d (exit %d) printed the password", i, r.code)
			}
		}
	}
}

// relocated is where an image of the shared source registry lands under
// prefix of host.
func relocated(host, prefix, ref string) string {
	return host + "/" + prefix + strings.TrimPrefix(ref, src.Host)
}

// exportedDigests runs an export and returns reference → digest from its
// report.
func (s *site) exportedDigests(what string, args ...string) map[string]string {
	s.t.Helper()
	r := s.run("", append([]string{"export", "--json", "-q", "-o", filepath.Join(s.t.TempDir(), "out.tar")}, args...)...)
	s.want(what, r, exitOK)
	var rep struct {
		Images []struct{ Ref, Digest string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		s.t.Fatalf("%s: %v\n%s", what, err, r.stdout)
	}
	out := map[string]string{}
	for _, im := range rep.Images {
		out[im.Ref] = im.Digest
	}
	return out
}

// sameDigests checks that every image of the source arrived at prefix of
// the site's registry with its digest.
func (s *site) sameDigests(what, prefix string, got map[string]string) {
	s.t.Helper()
	for _, im := range images {
		ref := relocated(s.reg.Host, prefix, im.Ref)
		if got[ref] != im.Digest {
			s.t.Errorf("%s: %s has digest %q, want %s", what, ref, got[ref], im.Digest)
		}
	}
}

func (s *site) refs(prefix string) []string {
	var out []string
	for _, im := range images {
		out = append(out, relocated(s.reg.Host, prefix, im.Ref))
	}
	return out
}

// TestSiteRegistry: import into and export from a registry with TLS from a
// private CA and htpasswd users: the CA by file, in a certs.d directory or
// not verified when asked (with a warning); credentials from --username
// with --password-stdin or from relocate login. Each failure has its exit
// code and its own message, and no run prints the password.
func TestSiteRegistry(t *testing.T) {
	s := newSite(t)
	host := s.reg.Host
	archive := filepath.Join(t.TempDir(), "site.tar")
	exportAll(t, archive)
	noCerts := []string{"--certs-dir", t.TempDir()} // not the machine's /etc
	emptyConfig := []string{"--docker-config", t.TempDir()}
	to := []string{"import", archive, "--to", host + "/site", "-q"}
	args := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	r := s.run("", args(to, noCerts, emptyConfig)...)
	s.want("import, CA not trusted", r, exitFailure, "TLS with "+host, "certificate signed by unknown authority", "--ca-file")

	r = s.run("", args(to, noCerts, emptyConfig, []string{"--ca-file", s.caFile})...)
	s.want("import without credentials", r, exitFailure, "no credentials for "+host)
	if strings.Contains(r.stderr, "authentication failed") {
		t.Errorf("no credentials reads like refused ones:\n%s", r.stderr)
	}

	creds := []string{"--username", siteUser, "--password-stdin"}
	r = s.run("not-"+s.password+"\n", args(to, noCerts, emptyConfig, []string{"--ca-file", s.caFile}, creds, []string{"--json"})...)
	s.want("import with a wrong password", r, exitFailure, "authentication failed for "+host)
	var doc jsonError
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Error.Kind != "operational" || !strings.Contains(doc.Error.Message, "authentication failed for "+host) {
		t.Errorf("--json of a wrong password: %v\n%s", err, r.stdout)
	}

	r = s.run(s.password+"\n", args(to, noCerts, emptyConfig, []string{"--ca-file", s.caFile}, creds, []string{"--json"})...)
	s.want("import with --username and --password-stdin", r, exitOK)
	var rep struct{ Images []struct{ Status string } }
	if json.Unmarshal([]byte(r.stdout), &rep); len(rep.Images) != len(images) || rep.Images[0].Status != "pushed" {
		t.Fatalf("import report: %s", r.stdout)
	}

	// relocate login: refused credentials leave no trace; accepted ones
	// land in config.json as docker writes them, and serve an export.
	config := t.TempDir()
	login := []string{"login", host, "--docker-config", config, "--ca-file", s.caFile, "--username", siteUser, "--password-stdin"}
	r = s.run("wrong\n", args(login, noCerts)...)
	s.want("login with a wrong password", r, exitFailure, "authentication failed for "+host)
	if _, err := os.Stat(filepath.Join(config, "config.json")); err == nil {
		t.Error("a refused login wrote config.json")
	}
	r = s.run(s.password, args(login, noCerts, []string{"--json"})...)
	s.want("login", r, exitOK)
	fi, err := os.Stat(filepath.Join(config, "config.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json after login: %v, mode %v", err, fi.Mode().Perm())
	}
	var cfg struct {
		Auths map[string]struct{ Auth string }
	}
	raw, _ := os.ReadFile(filepath.Join(config, "config.json"))
	if json.Unmarshal(raw, &cfg); cfg.Auths[host].Auth != base64.StdEncoding.EncodeToString([]byte(siteUser+":"+s.password)) {
		t.Errorf("config.json holds no docker auth entry for %s", host)
	}
	loggedIn := []string{"--docker-config", config}

	got := s.exportedDigests("export with --ca-file and the login's credentials", args(noCerts, loggedIn, []string{"--ca-file", s.caFile}, s.refs("site"))...)
	s.sameDigests("import then export", "site", got)

	// The CA in a certs.d directory, given by flag or by environment.
	certs := t.TempDir()
	os.MkdirAll(filepath.Join(certs, host), 0o755)
	os.WriteFile(filepath.Join(certs, host, "ca.crt"), s.ca.PEM, 0o644)
	s.exportedDigests("export with certs.d/HOST/ca.crt", args([]string{"--certs-dir", t.TempDir(), "--certs-dir", certs}, loggedIn, s.refs("site")[:1])...)
	t.Setenv("RELOCATE_CERTS_DIRS", certs)
	s.exportedDigests("export with $RELOCATE_CERTS_DIRS", args(loggedIn, s.refs("site")[:1])...)
	t.Setenv("RELOCATE_CERTS_DIRS", "")

	r = s.run("", args([]string{"export", "-q", "-o", filepath.Join(t.TempDir(), "x.tar")}, loggedIn, s.refs("site")[:1])...)
	s.want("export, CA not trusted", r, exitFailure, "TLS with "+host, "certificate signed by unknown authority")
	r = s.run("", args([]string{"export", "-o", filepath.Join(t.TempDir(), "x.tar")}, loggedIn, []string{"--insecure-skip-tls-verify"}, s.refs("site")[:1])...)
	s.want("export with --insecure-skip-tls-verify", r, exitOK, "warning: the TLS certificate of "+host+" is not verified")
	r = s.run(s.password, args([]string{"import", archive, "--to", host + "/insecure", "-q", "--insecure-skip-tls-verify"}, emptyConfig, creds)...)
	s.want("import with --insecure-skip-tls-verify", r, exitOK, "warning: the TLS certificate of "+host+" is not verified")
}

// TestSiteRegistryMutualTLS: a registry that requires client certificates
// (distribution's http.tls.clientcas) gets the one in its certs.d
// directory, client.cert and client.key or any NAME.cert and NAME.key;
// without one the failure names the host and what is missing.
func TestSiteRegistryMutualTLS(t *testing.T) {
	clientCA, err := testregistry.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, clientCA)
	host := s.reg.Host
	archive := filepath.Join(t.TempDir(), "site.tar")
	exportAll(t, archive)
	pair, err := clientCA.Client("site")
	if err != nil {
		t.Fatal(err)
	}
	certsFor := func(name string) string {
		root := t.TempDir()
		dir := filepath.Join(root, host)
		if _, _, err := pair.Write(dir, name); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "ca.crt"), s.ca.PEM, 0o644)
		return root
	}
	creds := []string{"--username", siteUser, "--password-stdin", "--docker-config", t.TempDir()}

	r := s.run(s.password, append([]string{"import", archive, "--to", host + "/mtls", "-q", "--certs-dir", t.TempDir(), "--ca-file", s.caFile}, creds...)...)
	s.want("import without a client certificate", r, exitFailure, "TLS with "+host, "client certificate", "client.cert")

	r = s.run(s.password, append([]string{"import", archive, "--to", host + "/mtls", "-q", "--certs-dir", certsFor("client")}, creds...)...)
	s.want("import with certs.d/HOST/client.cert", r, exitOK)

	// podman's convention: any NAME.cert with NAME.key; login goes through
	// mutual TLS too.
	podman, config := certsFor("site"), t.TempDir()
	r = s.run(s.password, "login", host, "--certs-dir", podman, "--docker-config", config, "--username", siteUser, "--password-stdin")
	s.want("login with certs.d/HOST/site.cert", r, exitOK)
	got := s.exportedDigests("export with certs.d/HOST/site.cert", append([]string{"--certs-dir", podman, "--docker-config", config}, s.refs("mtls")...)...)
	s.sameDigests("mutual TLS", "mtls", got)
}

// TestRegistryFlagsUsage: credential flags used wrongly are usage errors
// (exit 2) that say why, before any registry is contacted.
func TestRegistryFlagsUsage(t *testing.T) {
	tar := writeFile(t, "a.tar", []byte("x"))
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		msg   string
	}{
		{"password and archive both from stdin", "pw", []string{"import", "-", "--to", "127.0.0.1:1/x", "--username", "u", "--password-stdin"}, `so does ARCHIVE "-"`},
		{"username without --password-stdin", "", []string{"import", tar, "--to", "127.0.0.1:1/x", "--username", "u"}, "--username needs --password-stdin"},
		{"--password-stdin without username", "pw", []string{"import", tar, "--to", "127.0.0.1:1/x", "--password-stdin"}, "--password-stdin needs --username"},
		{"empty password", "\n", []string{"import", tar, "--to", "127.0.0.1:1/x", "--username", "u", "--password-stdin"}, "stdin held no password"},
		{"username for two registries", "pw", []string{"export", "-o", filepath.Join(t.TempDir(), "x.tar"), "a.example/x:1", "b.example/y:1", "--username", "u", "--password-stdin"}, "--username applies to one registry, and the references name 2 (a.example, b.example)"},
		{"CA file absent", "", []string{"import", tar, "--to", "127.0.0.1:1/x", "--ca-file", filepath.Join(t.TempDir(), "absent.pem")}, "absent.pem"},
		{"CA file not PEM", "", []string{"export", "-o", filepath.Join(t.TempDir(), "x.tar"), "a.example/x:1", "--ca-file", tar}, "no PEM certificate"},
		{"login without a terminal", "", []string{"login", "127.0.0.1:1"}, "--password-stdin when stdin is not a terminal"},
		{"login to a URL path", "pw", []string{"login", "127.0.0.1:1/team", "--username", "u", "--password-stdin"}, "login takes a registry HOST[:PORT]"},
	} {
		r := relocateCmd(t, strings.NewReader(tc.stdin), tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%s: exit %d, want %d with %q\n%s", tc.name, r.code, exitUsage, tc.msg, r.stderr)
		}
	}
	for _, cmd := range []string{"export", "import", "login"} {
		r := relocateCmd(t, nil, cmd, "--help")
		for _, f := range []string{"--ca-file", "--certs-dir", "--insecure-skip-tls-verify", "--username", "--password-stdin", "--docker-config"} {
			if !strings.Contains(r.stdout, f) {
				t.Errorf("%s --help does not mention %s", cmd, f)
			}
		}
	}
	if r := relocateCmd(t, nil, "help"); !slices.ContainsFunc(strings.Split(r.stdout, "\n"), func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "login") }) {
		t.Errorf("help lists no login command:\n%s", r.stdout)
	}
}

// TestErrorsNeverShowThePassword: whatever puts the password in an error
// message (here a hostile registry's reply, simulated by a reference that
// holds it), the message relocate prints does not.
func TestErrorsNeverShowThePassword(t *testing.T) {
	const pw = "hunter2-secret"
	r := relocateCmd(t, strings.NewReader(pw), "export", "-o", filepath.Join(t.TempDir(), "x.tar"), "--json", "--retries", "0", "--username", "u", "--password-stdin", "127.0.0.1:1/"+pw+"/x:1")
	if r.code == exitOK || strings.Contains(r.stderr+r.stdout, pw) || !strings.Contains(r.stderr, "[redacted]") {
		t.Errorf("exit %d; the password shows or nothing was redacted:\n%s\n%s", r.code, r.stderr, r.stdout)
	}
}
