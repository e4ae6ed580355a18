package notary

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"
)

// tkey is a test key that signs the way Notary does.
type tkey struct {
	typ    string
	signer crypto.Signer
	public []byte // keyval.public: PKIX DER, PEM certificate or raw ed25519
	id     string
	cert   *x509.Certificate
}

// rsaKey is generated once: 2048-bit generation is slow.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newECDSASigner(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newKey makes a key of a non-certificate type.
func newKey(t *testing.T, typ string) *tkey {
	t.Helper()
	k := &tkey{typ: typ}
	switch typ {
	case keyECDSA:
		k.signer = newECDSASigner(t)
	case keyRSA:
		k.signer = rsaKey()
	case keyED25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.signer = priv
		k.public = priv.Public().(ed25519.PublicKey)
		k.id = keyID(typ, k.public)
		return k
	default:
		t.Fatalf("newKey %s", typ)
	}
	der, err := x509.MarshalPKIXPublicKey(k.signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	k.public = der
	k.id = keyID(typ, der)
	return k
}

// certOpts shapes a test certificate.
type certOpts struct {
	cn                  string
	notBefore, notAfter time.Time
	issuer              *tkey // nil: self-signed
	isCA                bool
}

// newCertKey makes an x509 key (ecdsa-x509 or rsa-x509) for signer.
func newCertKey(t *testing.T, typ string, signer crypto.Signer, o certOpts) *tkey {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: o.cn},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  o.isCA,
	}
	parent, parentKey := tmpl, signer
	if o.issuer != nil {
		parent, parentKey = o.issuer.cert, o.issuer.signer
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, signer.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &tkey{typ: typ, signer: signer, public: pub, id: keyID(typ, pub), cert: cert}
}

// newRootKey is a root key as notary makes it: an ECDSA key in a self-signed
// certificate whose CN is the GUN.
func newRootKey(t *testing.T, gun string, now time.Time) *tkey {
	return newCertKey(t, keyECDSAX509, newECDSASigner(t), certOpts{cn: gun, notBefore: now.Add(-time.Hour), notAfter: now.AddDate(10, 0, 0)})
}

func (k *tkey) json() map[string]any {
	return map[string]any{"keytype": k.typ, "keyval": map[string]any{"private": nil, "public": k.public}}
}

// sign signs msg with Notary's method for the key: raw r||s ECDSA, RSA-PSS
// or Ed25519.
func (k *tkey) sign(t *testing.T, msg []byte) (string, []byte) {
	t.Helper()
	digest := sha256.Sum256(msg)
	switch s := k.signer.(type) {
	case *ecdsa.PrivateKey:
		r, ss, err := ecdsa.Sign(rand.Reader, s, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		return methodECDSA, sig
	case *rsa.PrivateKey:
		sig, err := rsa.SignPSS(rand.Reader, s, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return methodRSAPSS, sig
	case ed25519.PrivateKey:
		return methodEdDSA, ed25519.Sign(s, msg)
	}
	t.Fatalf("sign with %T", k.signer)
	return "", nil
}

// signFile canonicalizes signed and wraps it with signatures by keys.
func signFile(t *testing.T, signed any, keys ...*tkey) []byte {
	t.Helper()
	raw, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := canonicalJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	sigs := []map[string]any{}
	for _, k := range keys {
		method, sig := k.sign(t, canon)
		sigs = append(sigs, map[string]any{"keyid": k.id, "method": method, "sig": sig})
	}
	out, err := json.Marshal(map[string]any{"signed": json.RawMessage(canon), "signatures": sigs})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func metaOf(data []byte) map[string]any {
	s256, s512 := sha256.Sum256(data), sha512.Sum512(data)
	return map[string]any{"hashes": map[string]any{"sha256": s256[:], "sha512": s512[:]}, "length": len(data)}
}

func targetMeta(digest []byte, length int64) map[string]any {
	return map[string]any{"hashes": map[string]any{"sha256": digest}, "length": length}
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// synthRoot is one root version.
type synthRoot struct {
	keys      []*tkey
	threshold int
	signers   []*tkey
	expires   time.Time
}

// synthDeleg is a delegated targets role; its parent is its path parent.
type synthDeleg struct {
	name      string
	keys      []*tkey
	threshold int
	paths     []string
	signers   []*tkey
	targets   map[string]any
	version   int64
	expires   time.Time
	omit      bool // declared but never published
}

// synthRepo builds a complete, consistent Notary repository signed in Go.
type synthRepo struct {
	gun                    string
	now                    time.Time
	roots                  []synthRoot
	ts, snap, targ         *tkey
	tsSigners, snapSigners []*tkey
	targSigners            []*tkey
	targets                map[string]any
	delegs                 []*synthDeleg
	tsVersion, snapVersion int64
	targVersion            int64
	tsExpires, snapExpires time.Time
	targExpires            time.Time
	badRootKeyID           bool
	ca                     *tkey // issuer of the root certificates when a test pins a CA
}

var (
	digestRel = sha256.Sum256([]byte("manifest from targets/releases"))
	digestTop = sha256.Sum256([]byte("manifest from targets"))
)

// newSynth is a repository like `docker trust` makes: root, targets with a
// targets/releases delegation, both holding tag v1 with different digests.
func newSynth(t *testing.T) *synthRepo {
	t.Helper()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := &synthRepo{gun: "registry.example:5000/team/app", now: now}
	rk := newRootKey(t, s.gun, now)
	s.roots = []synthRoot{{keys: []*tkey{rk}, threshold: 1, signers: []*tkey{rk}, expires: now.AddDate(10, 0, 0)}}
	s.ts, s.snap, s.targ = newKey(t, keyECDSA), newKey(t, keyECDSA), newKey(t, keyECDSA)
	s.targets = map[string]any{"v1": targetMeta(digestTop[:], 2000), "only-top": targetMeta(digestTop[:], 3000)}
	rel := newKey(t, keyECDSA)
	s.delegs = []*synthDeleg{{name: roleReleases, keys: []*tkey{rel}, threshold: 1, paths: []string{""},
		signers: []*tkey{rel}, targets: map[string]any{"v1": targetMeta(digestRel[:], 1234)}, version: 1, expires: now.AddDate(3, 0, 0)}}
	s.tsVersion, s.snapVersion, s.targVersion = 5, 4, 3
	s.tsExpires, s.snapExpires, s.targExpires = now.AddDate(0, 0, 14), now.AddDate(3, 0, 0), now.AddDate(3, 0, 0)
	return s
}

func (s *synthRepo) rootFile(t *testing.T, version int, r synthRoot) []byte {
	t.Helper()
	keys := map[string]any{}
	var rootIDs []string
	for _, k := range r.keys {
		id := k.id
		if s.badRootKeyID {
			id = keyID(k.typ, []byte("some other key"))
		}
		keys[id] = k.json()
		rootIDs = append(rootIDs, id)
	}
	roles := map[string]any{roleRoot: map[string]any{"keyids": rootIDs, "threshold": r.threshold}}
	for name, k := range map[string]*tkey{roleTimestamp: s.ts, roleSnapshot: s.snap, roleTargets: s.targ} {
		keys[k.id] = k.json()
		roles[name] = map[string]any{"keyids": []string{k.id}, "threshold": 1}
	}
	return signFile(t, map[string]any{"_type": typeRoot, "consistent_snapshot": false, "expires": ts(r.expires),
		"keys": keys, "roles": roles, "version": version}, r.signers...)
}

func (s *synthRepo) targetsFile(t *testing.T, role string, version int64, expires time.Time, targets map[string]any, signers []*tkey) []byte {
	t.Helper()
	dkeys := map[string]any{}
	droles := []any{}
	for _, d := range s.delegs {
		if parentRole(d.name) != role {
			continue
		}
		var ids []string
		for _, k := range d.keys {
			dkeys[k.id] = k.json()
			ids = append(ids, k.id)
		}
		droles = append(droles, map[string]any{"name": d.name, "keyids": ids, "threshold": d.threshold, "paths": d.paths})
	}
	return signFile(t, map[string]any{"_type": typeTargets, "expires": ts(expires), "version": version,
		"targets": targets, "delegations": map[string]any{"keys": dkeys, "roles": droles}}, signers...)
}

func or(signers []*tkey, k *tkey) []*tkey {
	if signers != nil {
		return signers
	}
	return []*tkey{k}
}

// build returns the files Collect would have produced.
func (s *synthRepo) build(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i, r := range s.roots {
		files[rootVersionFile(int64(i+1))] = s.rootFile(t, i+1, r)
	}
	files[fileRoot] = files[rootVersionFile(int64(len(s.roots)))]
	files[fileTargets] = s.targetsFile(t, roleTargets, s.targVersion, s.targExpires, s.targets, or(s.targSigners, s.targ))
	meta := map[string]any{roleRoot: metaOf(files[fileRoot]), roleTargets: metaOf(files[fileTargets])}
	for _, d := range s.delegs {
		if d.omit {
			continue
		}
		f := s.targetsFile(t, d.name, d.version, d.expires, d.targets, d.signers)
		files[RoleFile(d.name)] = f
		meta[d.name] = metaOf(f)
	}
	files[fileSnapshot] = signFile(t, map[string]any{"_type": typeSnapshot, "expires": ts(s.snapExpires),
		"version": s.snapVersion, "meta": meta}, or(s.snapSigners, s.snap)...)
	files[fileTimestamp] = signFile(t, map[string]any{"_type": typeTimestamp, "expires": ts(s.tsExpires),
		"version": s.tsVersion, "meta": map[string]any{roleSnapshot: metaOf(files[fileSnapshot])}}, or(s.tsSigners, s.ts)...)
	return files
}

// pin is the usual trust: the first root, obtained out of band.
func pin(files map[string][]byte) Trusted { return Trusted{Root: files[rootVersionFile(1)]} }
