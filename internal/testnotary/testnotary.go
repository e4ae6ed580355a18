// Package testnotary runs a real Notary v1 server for tests: notary-signer
// and notary-server (Debian package notary) on 127.0.0.1 with TLS from a
// throwaway CA and memory storage, and the real notary client set up for it.
package testnotary

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
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

// Server is a notary-signer plus notary-server on loopback with TLS
// from a throwaway CA and memory storage, and a notary client set up for it.
type Server struct {
	URL      string // https://127.0.0.1:PORT
	Dir      string
	CAFile   string // the CA of the server's TLS certificate
	Client   *http.Client
	TrustDir string // the notary client's trust directory
}

// Start starts the pair (as /work/shared/testbed/notary.sh does) and
// stops both process groups when the test ends. It skips when the binaries
// are missing, unless RELOCATE_REQUIRE_NOTARY=1.
func Start(t *testing.T) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts notary-server and notary-signer: not under -short")
	}
	for _, bin := range []string{"notary", "notary-server", "notary-signer"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("RELOCATE_REQUIRE_NOTARY") == "1" {
				t.Fatalf("%s not found and RELOCATE_REQUIRE_NOTARY=1 (apt-get install notary)", bin)
			}
			t.Skipf("%s not found (apt-get install notary)", bin)
		}
	}
	dir := t.TempDir()
	s := &Server{Dir: dir, CAFile: filepath.Join(dir, "ca.crt"), TrustDir: filepath.Join(dir, "trust")}
	ca, caKey := writeCA(t, s.CAFile)
	for _, n := range []string{"notary-server", "notary-signer"} {
		writeLeaf(t, dir, n, ca, caKey)
	}
	sport, gport := freePort(t), freePort(t)
	s.URL = fmt.Sprintf("https://127.0.0.1:%d", sport)
	writeJSON(t, filepath.Join(dir, "signer.json"), map[string]any{
		"server": map[string]any{"grpc_addr": fmt.Sprintf("127.0.0.1:%d", gport),
			"tls_cert_file": filepath.Join(dir, "notary-signer.crt"), "tls_key_file": filepath.Join(dir, "notary-signer.key"),
			"client_ca_file": s.CAFile},
		"logging": map[string]any{"level": "info"}, "storage": map[string]any{"backend": "memory"},
	})
	writeJSON(t, filepath.Join(dir, "server.json"), map[string]any{
		"server": map[string]any{"http_addr": fmt.Sprintf("127.0.0.1:%d", sport),
			"tls_cert_file": filepath.Join(dir, "notary-server.crt"), "tls_key_file": filepath.Join(dir, "notary-server.key")},
		"trust_service": map[string]any{"type": "remote", "hostname": "127.0.0.1", "port": fmt.Sprint(gport),
			"key_algorithm": "ecdsa", "tls_ca_file": s.CAFile,
			"tls_client_cert": filepath.Join(dir, "notary-server.crt"), "tls_client_key": filepath.Join(dir, "notary-server.key")},
		"logging": map[string]any{"level": "info"}, "storage": map[string]any{"backend": "memory"},
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	s.Client = &http.Client{Timeout: 10 * time.Second,
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
		resp, err := s.Client.Get(s.URL + path)
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

// Notary runs the real notary client against the server.
func (s *Server) Notary(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("notary", append([]string{"-s", s.URL, "--tlscacert", s.CAFile, "-d", s.TrustDir}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+s.Dir,
		"NOTARY_ROOT_PASSPHRASE=test-root", "NOTARY_TARGETS_PASSPHRASE=test-targets",
		"NOTARY_SNAPSHOT_PASSPHRASE=test-snapshot", "NOTARY_DELEGATION_PASSPHRASE=test-delegation")
	cmd.Stdin = strings.NewReader("yes\n") // root rotation asks to confirm
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("notary %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
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

// DelegationKey makes what `docker trust signer add` takes: a P-256 key
// and a self-signed certificate for it.
func DelegationKey(t testing.TB, dir, name string) (certFile, keyFile string, cert *x509.Certificate) {
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

func writeECKey(t testing.TB, file string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, file, "EC PRIVATE KEY", der)
}

func writePEM(t testing.TB, file, typ string, der []byte) {
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

func newECDSASigner(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
