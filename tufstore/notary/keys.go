package notary

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Key types and signature methods Notary v1 uses.
const (
	keyECDSA     = "ecdsa"
	keyECDSAX509 = "ecdsa-x509"
	keyRSA       = "rsa"
	keyRSAX509   = "rsa-x509"
	keyED25519   = "ed25519"

	methodECDSA  = "ecdsa"
	methodRSAPSS = "rsapss"
	methodEdDSA  = "eddsa"
)

// minRSABits is Notary's floor for RSA keys.
const minRSABits = 2048

// tufKey is a key as it appears in root.keys and delegations.keys.
type tufKey struct {
	Type  string `json:"keytype"`
	Value struct {
		Public []byte `json:"public"`
	} `json:"keyval"`
}

// publicKey is a parsed key with its recomputed ID.
type publicKey struct {
	id    string
	typ   string
	pub   crypto.PublicKey
	spki  string              // DER of the public key: what "unique keys" means
	certs []*x509.Certificate // x509 key types: leaf first, then intermediates
}

// keyID is Notary's key ID: hex SHA-256 of the canonical JSON of the public
// key with "private":null. Recomputed here because a keyid field is only a
// claim.
func keyID(typ string, public []byte) string {
	var b bytes.Buffer
	b.WriteString(`{"keytype":`)
	writeCanonicalString(&b, typ)
	b.WriteString(`,"keyval":{"private":null,"public":"`)
	b.WriteString(base64.StdEncoding.EncodeToString(public))
	b.WriteString(`"}}`)
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:])
}

// parseKey decodes a key of one of the supported types.
func parseKey(k tufKey) (*publicKey, error) {
	pk := &publicKey{id: keyID(k.Type, k.Value.Public), typ: k.Type}
	var err error
	switch k.Type {
	case keyECDSA, keyRSA:
		pk.pub, err = x509.ParsePKIXPublicKey(k.Value.Public)
	case keyECDSAX509, keyRSAX509:
		pk.certs, err = parseCertificates(k.Value.Public)
		if err == nil {
			pk.pub = pk.certs[0].PublicKey
		}
	case keyED25519:
		if len(k.Value.Public) != ed25519.PublicKeySize {
			err = fmt.Errorf("ed25519 key of %d bytes", len(k.Value.Public))
		}
		pk.pub = ed25519.PublicKey(k.Value.Public)
	default:
		return nil, fmt.Errorf("unsupported key type %q", k.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", k.Type, err)
	}
	// The key material must be what the type says, or a signature method
	// could be checked against the wrong algorithm.
	switch p := pk.pub.(type) {
	case *ecdsa.PublicKey:
		if k.Type != keyECDSA && k.Type != keyECDSAX509 {
			return nil, fmt.Errorf("%s key holds an ECDSA key", k.Type)
		}
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s key: curve %s, want P-256", k.Type, p.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.Type != keyRSA && k.Type != keyRSAX509 {
			return nil, fmt.Errorf("%s key holds an RSA key", k.Type)
		}
		if p.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%s key: %d bits, want at least %d", k.Type, p.N.BitLen(), minRSABits)
		}
	case ed25519.PublicKey:
		if k.Type != keyED25519 {
			return nil, fmt.Errorf("%s key holds an ed25519 key", k.Type)
		}
	default:
		return nil, fmt.Errorf("%s key: unsupported public key %T", k.Type, pk.pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pk.pub)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", k.Type, err)
	}
	pk.spki = string(der)
	return pk, nil
}

// parseCertificates reads the PEM certificates of an x509 key: Notary puts
// the leaf first, intermediates (if any) after it.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// parseKeys decodes a keys map, refusing entries whose ID is not the one the
// key hashes to.
func parseKeys(m map[string]tufKey) (map[string]*publicKey, error) {
	keys := make(map[string]*publicKey, len(m))
	for id, k := range m {
		pk, err := parseKey(k)
		if err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrMalformed, shortID(id), err)
		}
		if pk.id != id {
			return nil, fmt.Errorf("%w: listed as %s, hashes to %s", ErrKeyID, shortID(id), shortID(pk.id))
		}
		keys[id] = pk
	}
	return keys, nil
}

// verify checks one signature. Each method is accepted only with the key
// types it belongs to.
func (k *publicKey) verify(method string, msg, sig []byte) error {
	switch strings.ToLower(method) {
	case methodECDSA:
		pub, ok := k.pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("method ecdsa with a %s key", k.typ)
		}
		// Notary signs raw r||s, each half the curve size, not ASN.1.
		if len(sig) != 64 {
			return fmt.Errorf("ecdsa signature of %d bytes, want 64 (raw r||s)", len(sig))
		}
		digest := sha256.Sum256(msg)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, digest[:], r, s) {
			return errors.New("ecdsa signature invalid")
		}
	case methodRSAPSS:
		pub, ok := k.pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("method rsapss with a %s key", k.typ)
		}
		digest := sha256.Sum256(msg)
		opts := &rsa.PSSOptions{SaltLength: sha256.Size, Hash: crypto.SHA256}
		if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, opts); err != nil {
			return fmt.Errorf("rsapss signature invalid: %w", err)
		}
	case methodEdDSA:
		pub, ok := k.pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("method eddsa with a %s key", k.typ)
		}
		if !ed25519.Verify(pub, msg, sig) {
			return errors.New("eddsa signature invalid")
		}
	default:
		return fmt.Errorf("unsupported signature method %q", method)
	}
	return nil
}

// roleKeys is what a role's signatures are checked against.
type roleKeys struct {
	keys      map[string]*publicKey
	threshold int
}

// verifySignatures counts valid signatures by distinct keys of the role and
// fails below its threshold. Distinct means distinct key material: two IDs
// for one key (say ecdsa and ecdsa-x509) count once.
func verifySignatures(msg []byte, sigs []signature, rk roleKeys) error {
	if rk.threshold < 1 {
		return fmt.Errorf("%w: threshold %d", ErrThreshold, rk.threshold)
	}
	valid := map[string]bool{}
	var problems []string
	for _, s := range sigs {
		k, ok := rk.keys[s.KeyID]
		if !ok {
			continue // not a key of this role: irrelevant, as in TUF
		}
		if err := k.verify(s.Method, msg, s.Sig); err != nil {
			problems = append(problems, shortID(s.KeyID)+": "+err.Error())
			continue
		}
		valid[k.spki] = true
	}
	if len(valid) < rk.threshold {
		detail := ""
		if len(problems) > 0 {
			detail = " (" + strings.Join(problems, "; ") + ")"
		}
		return fmt.Errorf("%w: %d of %d required signatures valid%s", ErrThreshold, len(valid), rk.threshold, detail)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
