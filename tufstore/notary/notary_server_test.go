package notary

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notaryServer is a notary-signer plus notary-server on loopback with TLS
// from a throwaway CA and memory storage, and a notary client set up for it.
type notaryServer struct {
	url      string
	dir      string
	caFile   string
	client   *http.Client
	trustDir string
}

// startNotary starts the pair (as /work/shared/testbed/notary.sh does) and
// stops both process groups when the test ends. It skips when the binaries
// are missing, unless RELOCATE_REQUIRE_NOTARY=1.
func startNotary(t *testing.T) *notaryServer {
	t.Helper()
	for _, bin := range []string{"notary", "notary-server", "notary-signer"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("RELOCATE_REQUIRE_NOTARY") == "1" {
				t.Fatalf("%s not found and RELOCATE_REQUIRE_NOTARY=1 (apt-get install notary)", bin)
			}
			t.Skipf("%s not found (apt-get install notary)", bin)
		}
	}
	dir := t.TempDir()
	s := &notaryServer{dir: dir, caFile: filepath.Join(dir, "ca.crt"), trustDir: filepath.Join(dir, "trust")}
	ca, caKey := writeCA(t, s.caFile)
	for _, n := range []string{"notary-server", "notary-signer"} {
		writeLeaf(t, dir, n, ca, caKey)
	}
	sport, gport := freePort(t), freePort(t)
	s.url = fmt.Sprintf("https://127.0.0.1:%d", sport)
	writeJSON(t, filepath.Join(dir, "signer.json"), map[string]any{
		"server": map[string]any{"grpc_addr": fmt.Sprintf("127.0.0.1:%d", gport),
			"tls_cert_file": filepath.Join(dir, "notary-signer.crt"), "tls_key_file": filepath.Join(dir, "notary-signer.key"),
			"client_ca_file": s.caFile},
		"logging": map[string]any{"level": "info"}, "storage": map[string]any{"backend": "memory"},
	})
	writeJSON(t, filepath.Join(dir, "server.json"), map[string]any{
		"server": map[string]any{"http_addr": fmt.Sprintf("127.0.0.1:%d", sport),
			"tls_cert_file": filepath.Join(dir, "notary-server.crt"), "tls_key_file": filepath.Join(dir, "notary-server.key")},
		"trust_service": map[string]any{"type": "remote", "hostname": "127.0.0.1", "port": fmt.Sprint(gport),
			"key_algorithm": "ecdsa", "tls_ca_file": s.caFile,
			"tls_client_cert": filepath.Join(dir, "notary-server.crt"), "tls_client_key": filepath.Join(dir, "notary-server.key")},
		"logging": map[string]any{"level": "info"}, "storage": map[string]any{"backend": "memory"},
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	s.client = &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	// The signer must listen before the server starts: a server that finds
	// no signer backs its gRPC connection off and answers key requests with
	// 500 for a while, even though its health endpoint says OK.
	startDaemon(t, dir, "notary-signer")
	waitFor(t, dir, "notary-signer listening", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", gport), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	startDaemon(t, dir, "notary-server")
	get := func(path string) bool {
		resp, err := s.client.Get(s.url + path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	waitFor(t, dir, "notary-server healthy", func() bool { return get("/_notary_server/health") })
	// Really ready when it can hand out a timestamp key, which needs the signer.
	waitFor(t, dir, "notary-server serving keys", func() bool {
		return get("/v2/readiness.example/probe/_trust/tuf/timestamp.key")
	})
	return s
}

func waitFor(t *testing.T, dir, what string, ready func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ready(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			server, _ := os.ReadFile(filepath.Join(dir, "notary-server.log"))
			signer, _ := os.ReadFile(filepath.Join(dir, "notary-signer.log"))
			t.Fatalf("not %s within 30s\nserver: %s\nsigner: %s", what, tail(server), tail(signer))
		}
	}
}

func startDaemon(t *testing.T, dir, name string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, "-config", filepath.Join(dir, strings.TrimPrefix(name, "notary-")+".json"), "-logf", "logfmt")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// Its own process group: kill exactly what this test started.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
	})
}

// notary runs the real notary client against the server.
func (s *notaryServer) notary(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("notary", append([]string{"-s", s.url, "--tlscacert", s.caFile, "-d", s.trustDir}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+s.dir,
		"NOTARY_ROOT_PASSPHRASE=test-root", "NOTARY_TARGETS_PASSPHRASE=test-targets",
		"NOTARY_SNAPSHOT_PASSPHRASE=test-snapshot", "NOTARY_DELEGATION_PASSPHRASE=test-delegation")
	cmd.Stdin = strings.NewReader("yes\n") // root rotation asks to confirm
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("notary %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *notaryServer) collect(t *testing.T, gun string) *Chain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Collect(ctx, s.client, s.url, gun)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeCA(t *testing.T, file string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newECDSASigner(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relocate test notary CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	writePEM(t, file, "CERTIFICATE", der)
	return cert, key
}

func writeLeaf(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) {
	t.Helper()
	key := newECDSASigner(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{name, "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", der)
	writeECKey(t, filepath.Join(dir, name+".key"), key)
}

// writeDelegationKey makes what `docker trust signer add` takes: a P-256 key
// and a self-signed certificate for it.
func writeDelegationKey(t *testing.T, dir, name string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key := newECDSASigner(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writeECKey(t, keyFile, key)
	return certFile, keyFile, cert
}

func writeECKey(t *testing.T, file string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, file, "EC PRIVATE KEY", der)
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// canonicalID is the ID the notary CLI shows for an x509 delegation key:
// that of the bare public key, not of the certificate.
func canonicalID(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return keyID(keyECDSA, der)
}

func hexDigest(d [32]byte) string { return fmt.Sprintf("%x", d[:]) }

// TestNotaryServer publishes with the real notary client, collects from the
// real notary-server and verifies, then checks each refusal on that data.
func TestNotaryServer(t *testing.T) {
	srv := startNotary(t)
	const gunA, gunB = "registry.example:5000/relocate/app", "registry.example:5000/relocate/other"
	relCert, relKey, relX509 := writeDelegationKey(t, srv.dir, "releases")

	// As `docker trust` does: keys made locally, snapshot key moved to the
	// server, targets/releases delegation holding the tag, and the same tag
	// with another digest in targets (so the preference is visible).
	srv.notary(t, "init", "-p", gunA)
	srv.notary(t, "key", "rotate", gunA, "snapshot", "-r")
	srv.notary(t, "delegation", "add", "-p", gunA, roleReleases, relCert, "--all-paths")
	srv.notary(t, "key", "import", relKey, "--role", roleReleases, "--gun", gunA)
	srv.notary(t, "addhash", gunA, "v1", "1234", "--sha256", hexDigest(digestRel), "-r", roleReleases)
	srv.notary(t, "addhash", gunA, "v1", "4321", "--sha256", hexDigest(digestTop))
	srv.notary(t, "addhash", gunA, "only-top", "77", "--sha256", hexDigest(digestTop))
	srv.notary(t, "publish", gunA)
	first := srv.collect(t, gunA)

	// Rotations: the targets key (client side) and the root key, then
	// another publish that leaves the root alone.
	srv.notary(t, "key", "rotate", gunA, "targets")
	srv.notary(t, "key", "rotate", gunA, "root")
	srv.notary(t, "publish", gunA)
	rotated := srv.collect(t, gunA)
	srv.notary(t, "addhash", "-p", gunA, "v2", "555", "--sha256", hexDigest(digestTop))
	cur := srv.collect(t, gunA)

	srv.notary(t, "init", "-p", gunB)
	srv.notary(t, "addhash", "-p", gunB, "v1", "10", "--sha256", hexDigest(digestTop))
	other := srv.collect(t, gunB)

	now := time.Now()
	pinned := Trusted{Root: first.Files["1.root.json"]}

	t.Run("collect", func(t *testing.T) {
		for _, f := range []string{"1.root.json", "2.root.json", "3.root.json", "4.root.json", "root.json",
			"timestamp.json", "snapshot.json", "targets.json", "targets%2Freleases.json"} {
			if cur.Files[f] == nil {
				t.Errorf("collected no %s", f)
			}
		}
		if cur.Files["5.root.json"] != nil || cur.GUN != gunA || cur.Server != srv.url {
			t.Errorf("chain: GUN %q server %q, 5.root.json %v", cur.GUN, cur.Server, cur.Files["5.root.json"] != nil)
		}
		if r := cur.Roles[0]; r.Role != roleRoot || r.Version != 4 || r.File != fileRoot {
			t.Errorf("first role %+v, want root version 4", r)
		}
		if _, err := Collect(context.Background(), srv.client, srv.url, "registry.example:5000/relocate/none"); !errors.Is(err, ErrMissing) {
			t.Errorf("Collect of an unknown GUN: %v, want ErrMissing", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Collect(ctx, srv.client, srv.url, gunA); !errors.Is(err, context.Canceled) {
			t.Errorf("Collect with a canceled context: %v", err)
		}
	})

	t.Run("verify through rotations from the first root", func(t *testing.T) {
		r, err := Verify(gunA, cur.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		wantTarget(t, r, "v1", digestRel[:], 1234, roleReleases)
		wantTarget(t, r, "only-top", digestTop[:], 77, roleTargets)
		wantTarget(t, r, "v2", digestTop[:], 555, roleTargets)
		got := map[string]int64{}
		for _, ro := range r.Roles() {
			got[ro.Role] = ro.Version
		}
		if got[roleRoot] != 4 || got[roleReleases] != 1 || len(got) != 5 {
			t.Fatalf("roles %v", got)
		}
	})

	t.Run("tag pointing at another digest", func(t *testing.T) {
		// A registry (or an attacker) says v1 is the targets-role digest;
		// docker trusts targets/releases, and so does Target.
		r, err := Verify(gunA, cur.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		d, _, _, err := r.Target("v1")
		if err != nil {
			t.Fatal(err)
		}
		if hexDigest([32]byte(d)) == hexDigest(digestTop) {
			t.Fatal("Target returned the digest the targets role holds, not targets/releases'")
		}
	})

	t.Run("pinned current root, state from an earlier import", func(t *testing.T) {
		if _, err := Verify(gunA, cur.Files, Trusted{Root: cur.Files[fileRoot]}, now); err != nil {
			t.Fatal(err)
		}
		old, err := Verify(gunA, first.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Verify(gunA, cur.Files, Trusted{State: old.NewState()}, now)
		if err != nil {
			t.Fatal(err)
		}
		wantTarget(t, r, "v2", digestTop[:], 555, roleTargets)
	})

	t.Run("root CA", func(t *testing.T) {
		root, err := decodeEnvelope(cur.Files[fileRoot], MaxRootSize)
		if err != nil {
			t.Fatal(err)
		}
		var rs rootSigned
		_ = root.decodeAs(typeRoot, &rs)
		pool := x509.NewCertPool()
		certs, err := parseCertificates(rs.Keys[rs.Roles[roleRoot].KeyIDs[0]].Value.Public)
		if err != nil {
			t.Fatal(err)
		}
		pool.AddCert(certs[0]) // notary's root certificates are self-signed
		if _, err := Verify(gunA, cur.Files, Trusted{RootCA: pool}, now); err != nil {
			t.Fatal(err)
		}
		wrong := x509.NewCertPool()
		wrong.AddCert(relX509)
		_, err = Verify(gunA, cur.Files, Trusted{RootCA: wrong}, now)
		wantRoleErr(t, err, ErrCertificate, roleRoot)
	})

	t.Run("trust on first use refused", func(t *testing.T) {
		_, err := Verify(gunA, cur.Files, Trusted{}, now)
		wantRoleErr(t, err, ErrNoTrustAnchor, roleRoot)
	})

	t.Run("tampered targets", func(t *testing.T) {
		files := clone(cur.Files)
		files[fileTargets] = []byte(strings.Replace(string(files[fileTargets]), `"length":555`, `"length":556`, 1))
		if string(files[fileTargets]) == string(cur.Files[fileTargets]) {
			t.Fatal("nothing tampered")
		}
		_, err := Verify(gunA, files, pinned, now)
		wantRoleErr(t, err, ErrThreshold, roleTargets)
	})

	t.Run("older targets under the current snapshot", func(t *testing.T) {
		files := clone(cur.Files)
		files[fileTargets] = rotated.Files[fileTargets] // signed by the same key, not the listed one
		_, err := Verify(gunA, files, pinned, now)
		wantRoleErr(t, err, ErrHashMismatch, roleTargets)
	})

	t.Run("rollback", func(t *testing.T) {
		newer, err := Verify(gunA, cur.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		// Same root version, older timestamp: the first role that went back.
		_, err = Verify(gunA, rotated.Files, Trusted{State: newer.NewState()}, now)
		wantRoleErr(t, err, ErrRollback, roleTimestamp)
		// Older root too.
		_, err = Verify(gunA, first.Files, Trusted{State: newer.NewState()}, now)
		wantRoleErr(t, err, ErrRollback, roleRoot)
	})

	t.Run("expired timestamp", func(t *testing.T) {
		r, err := Verify(gunA, cur.Files, pinned, now)
		if err != nil {
			t.Fatal(err)
		}
		var tsExp time.Time
		for _, ro := range r.Roles() {
			if ro.Role == roleTimestamp {
				tsExp = ro.Expires
			}
		}
		late := tsExp.Add(time.Hour)
		_, err = Verify(gunA, cur.Files, pinned, late)
		wantRoleErr(t, err, ErrExpired, roleTimestamp)
		if _, err := VerifyWithGrace(gunA, cur.Files, pinned, late, 2*time.Hour); err != nil {
			t.Fatalf("within grace: %v", err)
		}
		if !r.TimestampExpired(late) || r.TimestampExpired(late.Add(-2*time.Hour)) || len(r.Expired(late)) != 0 {
			t.Fatal("expiry helpers disagree with the timestamp")
		}
		if _, err := Verify(gunA, cur.Files, pinned, now.AddDate(50, 0, 0)); !errors.Is(err, ErrExpired) {
			t.Fatalf("50 years on: %v, want ErrExpired", err)
		}
	})

	t.Run("root certificate for another GUN", func(t *testing.T) {
		_, err := Verify(gunB, other.Files, pinned, now) // GUN A's root pinned for GUN B
		wantRoleErr(t, err, ErrCertificate, roleRoot)
		_, err = Verify(gunA, other.Files, Trusted{Root: other.Files[fileRoot]}, now) // B's data as A's
		wantRoleErr(t, err, ErrCertificate, roleRoot)
		if _, err := Verify(gunB, other.Files, Trusted{Root: other.Files["1.root.json"]}, now); err != nil {
			t.Fatalf("GUN B itself: %v", err)
		}
	})

	// Last: it changes the repository. The delegation's key is replaced in
	// targets but targets/releases is not re-signed, which notary-server
	// accepts and the notary client then reports as below threshold.
	t.Run("delegation below threshold", func(t *testing.T) {
		newCert, _, _ := writeDelegationKey(t, srv.dir, "releases2")
		srv.notary(t, "delegation", "add", gunA, roleReleases, newCert)
		srv.notary(t, "delegation", "remove", "-p", gunA, roleReleases, canonicalID(t, relX509))
		broken := srv.collect(t, gunA)
		_, err := Verify(gunA, broken.Files, pinned, time.Now())
		wantRoleErr(t, err, ErrThreshold, roleReleases)
	})
}
