package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testnotary"
)

// notarySite signs images with the real notary client against a real
// notary-server, as Docker Content Trust does, and imports at a site.
type notarySite struct {
	t     *testing.T
	srv   *testnotary.Server
	state string
}

func gunOf(ref string) string { return ref[:strings.LastIndex(ref, ":")] }

// sign publishes tag → image in the image's GUN (init on first use).
func (n *notarySite) sign(im testimages.Image, as testimages.Image) {
	n.t.Helper()
	gun := gunOf(im.Ref)
	if _, err := os.Stat(filepath.Join(n.srv.TrustDir, "tuf", gun)); err != nil {
		n.srv.Notary(n.t, "init", gun)
	}
	n.srv.Notary(n.t, "addhash", gun, "v1", fmt.Sprint(as.Size), "--sha256", strings.TrimPrefix(as.Digest, "sha256:"))
	n.srv.Notary(n.t, "publish", gun)
}

// root fetches a GUN's current root from the server, as a site would have
// received it out of band.
func (n *notarySite) root(gun string) string {
	n.t.Helper()
	resp, err := n.srv.Client.Get(n.srv.URL + "/v2/" + gun + "/_trust/tuf/root.json")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := filepath.Join(n.t.TempDir(), "root.json")
	os.WriteFile(p, b, 0o644)
	return p
}

func (n *notarySite) export(refs ...string) string {
	n.t.Helper()
	path := filepath.Join(n.t.TempDir(), "site.tar")
	args := []string{"export", "-o", path, "--plain-http", "-q", "--notary-ca", n.srv.CAFile}
	for _, r := range refs {
		args = append(args, r, "--notary", gunOf(r)+"="+n.srv.URL)
	}
	mustRun(n.t, args...)
	return path
}

func TestNotaryTrustData(t *testing.T) {
	needRegistries(t)
	n := &notarySite{t: t, srv: testnotary.Start(t), state: t.TempDir()}
	n.sign(images[0], images[0])
	gun := gunOf(images[0].Ref)
	root := n.root(gun)
	good := n.export(refs[0])

	// Trust on first use is refused; the message says how to pin.
	r := relocateCmd(t, nil, "import", good, "--to", dst.Host+"/notary", "--plain-http", "--state", n.state)
	if r.code != exitRefused || !strings.Contains(r.stderr, "--trust "+gun+"=root.json") {
		t.Fatalf("import without a pin: exit %d\n%s", r.code, r.stderr)
	}
	// A root of another GUN is refused.
	other := images[1]
	n.sign(other, other)
	r = relocateCmd(t, nil, "verify", good, "--state", n.state, "--trust", gun+"="+n.root(gunOf(other.Ref)))
	if r.code != exitRefused || !strings.Contains(r.stderr, "notary:"+gun) {
		t.Fatalf("root of another GUN: exit %d\n%s", r.code, r.stderr)
	}

	r = mustRun(t, "import", good, "--to", dst.Host+"/notary", "--plain-http", "--state", n.state, "--trust", gun+"="+root)
	if !strings.Contains(r.stderr, "vouched: "+refs[0]+" by notary:"+gun+"/targets") {
		t.Errorf("import does not say which role vouched:\n%s", r.stderr)
	}
	checkTag(t, "notary", images[0])

	// A newer publish moves the tag to another image: refused, even with
	// the state that knows this GUN.
	n.sign(images[0], images[2])
	moved := n.export(refs[0])
	tufSite := &tufSite{t: t, state: n.state, prefix: "notary"}
	tufSite.refuse(moved, "not vouched for")

	// Sign it right again, import, then replay the older archive: rollback.
	n.sign(images[0], images[0])
	mustRun(t, "import", n.export(refs[0]), "--to", dst.Host+"/notary", "--plain-http", "--state", n.state)
	tufSite.refuse(good, "notary:"+gun)
}
