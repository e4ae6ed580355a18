package notary

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeyIDRecomputed(t *testing.T) {
	// A key notary-server 0.7.0 put in a root, with the ID it gave it.
	pub, _ := base64.StdEncoding.DecodeString("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEt9cK+KyDZ25KW49V4AczMg2jjIpQHA17VkXMcjg2wKzWaK4CO6JeLWcrVCGyhGOhrMJMHdlMQEsPDxA5Brl7EA==")
	if got, want := keyID(keyECDSA, pub), "779d47326579ed81a7ec175c094d42ac89f3dc3c31073f46175c391c09068b12"; got != want {
		t.Fatalf("keyID = %s, want %s", got, want)
	}
	// Every key notary listed in the fixture's roots and delegations hashes
	// to the ID it is listed under.
	n := 0
	for _, file := range []string{"root.json", "targets.json"} {
		data, err := os.ReadFile(filepath.Join("testdata/notary-0.7.0", file))
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Signed struct {
				Keys        map[string]tufKey `json:"keys"`
				Delegations struct {
					Keys map[string]tufKey `json:"keys"`
				} `json:"delegations"`
			} `json:"signed"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		for _, m := range []map[string]tufKey{f.Signed.Keys, f.Signed.Delegations.Keys} {
			keys, err := parseKeys(m)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			n += len(keys)
		}
	}
	if n != 5 {
		t.Fatalf("checked %d keys, want 5 (4 in root, 1 delegation)", n)
	}
	// A listed ID that is not the key's hash is refused, never believed.
	k := newKey(t, keyECDSA)
	if _, err := parseKeys(map[string]tufKey{keyID(keyECDSA, []byte("x")): {Type: k.typ, Value: struct {
		Public []byte `json:"public"`
	}{k.public}}}); !errors.Is(err, ErrKeyID) {
		t.Fatalf("mismatched key ID: %v, want ErrKeyID", err)
	}
}

func TestSignatureMethods(t *testing.T) {
	msg := []byte(`{"_type":"Targets","version":1}`)
	ec, rsaK, ed := newKey(t, keyECDSA), newKey(t, keyRSA), newKey(t, keyED25519)
	now := time.Now()
	ecCert := newCertKey(t, keyECDSAX509, ec.signer, certOpts{cn: "c", notBefore: now.Add(-time.Hour), notAfter: now.Add(time.Hour)})
	rsaCert := newCertKey(t, keyRSAX509, rsaK.signer, certOpts{cn: "c", notBefore: now.Add(-time.Hour), notAfter: now.Add(time.Hour)})
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(p384.Public())
	asn1Sig := func() []byte {
		d := sha256.Sum256(msg)
		r, s, _ := ecdsa.Sign(rand.Reader, ec.signer.(*ecdsa.PrivateKey), d[:])
		b, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		return b
	}
	sign := func(k *tkey) (string, []byte) { return k.sign(t, msg) }
	flip := func(method string, sig []byte) (string, []byte) {
		sig = append([]byte(nil), sig...)
		sig[len(sig)/2] ^= 1
		return method, sig
	}
	for _, c := range []struct {
		name   string
		key    *tkey
		method string
		sig    []byte
		ok     bool
	}{
		{name: "ecdsa raw r||s", key: ec, ok: true},
		{name: "ecdsa with ecdsa-x509 key", key: ecCert, ok: true},
		{name: "rsapss", key: rsaK, ok: true},
		{name: "rsapss with rsa-x509 key", key: rsaCert, ok: true},
		{name: "eddsa", key: ed, ok: true},
		{name: "ecdsa ASN.1 signature is not Notary's", key: ec, method: methodECDSA, sig: asn1Sig()},
		{name: "ecdsa tampered", key: ec, method: "tamper"},
		{name: "rsapss tampered", key: rsaK, method: "tamper"},
		{name: "eddsa tampered", key: ed, method: "tamper"},
		{name: "eddsa method on an ecdsa key", key: ec, method: methodEdDSA, sig: make([]byte, 64)},
		{name: "ecdsa method on an ed25519 key", key: ed, method: methodECDSA, sig: make([]byte, 64)},
		{name: "unknown method", key: ec, method: "rsapkcs1v15", sig: make([]byte, 64)},
	} {
		t.Run(c.name, func(t *testing.T) {
			method, sig := c.method, c.sig
			switch method {
			case "":
				method, sig = sign(c.key)
			case "tamper":
				method, sig = flip(sign(c.key))
			}
			pk, err := parseKey(tufKey{Type: c.key.typ, Value: struct {
				Public []byte `json:"public"`
			}{c.key.public}})
			if err != nil {
				t.Fatal(err)
			}
			if pk.id != c.key.id {
				t.Fatalf("id %s, want %s", pk.id, c.key.id)
			}
			err = pk.verify(method, msg, sig)
			if c.ok && err != nil {
				t.Fatalf("valid signature refused: %v", err)
			}
			if !c.ok && err == nil {
				t.Fatal("bad signature accepted")
			}
		})
	}
	for _, c := range []struct {
		name, typ string
		public    []byte
	}{
		{"P-384 ecdsa key", keyECDSA, der},
		{"ecdsa type holding an RSA key", keyECDSA, rsaK.public},
		{"rsa type holding an ECDSA key", keyRSA, ec.public},
		{"ecdsa type holding an ed25519 key", keyECDSA, mustPKIX(t, ed.signer.Public())},
		{"short ed25519 key", keyED25519, ed.public[:16]},
		{"x509 type without a certificate", keyECDSAX509, ec.public},
		{"unknown type", "dsa", ec.public},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseKey(tufKey{Type: c.typ, Value: struct {
				Public []byte `json:"public"`
			}{c.public}}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func mustPKIX(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestNotaryFixture verifies trust data a real notary-server produced, so the
// format is covered even where the notary binaries are not installed.
func TestNotaryFixture(t *testing.T) {
	const gun = "registry.example:5000/fixture/app"
	files := map[string][]byte{}
	paths, _ := filepath.Glob("testdata/notary-0.7.0/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = data
	}
	now := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	r, err := Verify(gun, files, Trusted{Root: files["1.root.json"]}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte("release manifest"))
	wantTarget(t, r, "v1", want[:], 1234, roleReleases)

	// And the same data refused where it must be.
	_, err = Verify(gun, files, Trusted{}, now)
	wantRoleErr(t, err, ErrNoTrustAnchor, roleRoot)
	_, err = Verify("registry.example:5000/fixture/other", files, Trusted{Root: files["1.root.json"]}, now)
	wantRoleErr(t, err, ErrCertificate, roleRoot)
	_, err = Verify(gun, files, Trusted{Root: files["1.root.json"]}, now.AddDate(0, 1, 0))
	wantRoleErr(t, err, ErrExpired, roleTimestamp)
	tampered := clone(files)
	tampered["targets.json"] = []byte(strings.Replace(string(files["targets.json"]), `"length":4321`, `"length":4322`, 1))
	_, err = Verify(gun, tampered, Trusted{Root: files["1.root.json"]}, now)
	wantRoleErr(t, err, ErrThreshold, roleTargets)
}

func clone(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
