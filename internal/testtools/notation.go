package testtools

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// NotationPKI is a test CA and a code-signing leaf, as notation expects,
// in PEM files.
type NotationPKI struct {
	CAPath, KeyPath, ChainPath string
}

// NewNotationPKI makes a CA and a leaf with common name cn (subject
// C=US, ST=WA, L=Seattle, O=Relocate Test, CN=cn).
func NewNotationPKI(t testing.TB, cn string) NotationPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn + " CA", Organization: []string{"Relocate Test"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: []string{"Relocate Test"}, Country: []string{"US"}, Province: []string{"WA"}, Locality: []string{"Seattle"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, BasicConstraintsValid: true}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := NotationPKI{CAPath: filepath.Join(dir, "ca.pem"), KeyPath: filepath.Join(dir, "leaf.key"), ChainPath: filepath.Join(dir, "leaf.pem")}
	der, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	for path, data := range map[string][]byte{
		p.CAPath:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.ChainPath: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...),
		p.KeyPath:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// SignerEnv is the environment that makes notation sign with the leaf as
// its default key, from a configuration of its own.
func (p NotationPKI) SignerEnv(t testing.TB) []string {
	t.Helper()
	cfg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cfg, "notation"), 0o700); err != nil {
		t.Fatal(err)
	}
	keys := fmt.Sprintf(`{"default":"test","keys":[{"name":"test","keyPath":%q,"certPath":%q}]}`, p.KeyPath, p.ChainPath)
	if err := os.WriteFile(filepath.Join(cfg, "notation", "signingkeys.json"), []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"XDG_CONFIG_HOME=" + cfg, "HOME=" + cfg}
}
