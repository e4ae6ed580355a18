package intoto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// parseKeys turns the caller's public keys into in-toto keys by key id;
// the same key under two names counts once.
func parseKeys(keys map[string][]byte) (map[string]in_toto.Key, error) {
	out := make(map[string]in_toto.Key, len(keys))
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		k, err := parseKey(keys[name])
		if err != nil {
			return nil, fmt.Errorf("in-toto: layout key %s: %w", name, err)
		}
		if isKeyID(name) && name != k.KeyID {
			return nil, fmt.Errorf("in-toto: layout key %s: the key's id is %s", name, k.KeyID)
		}
		out[k.KeyID] = k
	}
	if len(out) == 0 {
		return nil, errors.New("in-toto: no layout keys")
	}
	return out, nil
}

func parseKey(b []byte) (in_toto.Key, error) {
	var k in_toto.Key
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		return parseJSONKey(t)
	}
	if err := k.LoadKeyReaderDefaults(bytes.NewReader(b)); err != nil {
		return in_toto.Key{}, err
	}
	if k.KeyVal.Private != "" {
		return in_toto.Key{}, errors.New("a private key; only public keys are accepted")
	}
	return k, nil
}

// parseJSONKey reads the securesystemslib key format. Its key id is not in
// the file (or must not be trusted if it is): it is the sha256 of the
// canonical JSON of the public part, as securesystemslib and in-toto-golang
// compute it.
func parseJSONKey(b []byte) (in_toto.Key, error) {
	var k in_toto.Key
	if err := json.Unmarshal(b, &k); err != nil {
		return in_toto.Key{}, err
	}
	if k.KeyVal.Private != "" {
		return in_toto.Key{}, errors.New("a private key; only public keys are accepted")
	}
	if k.KeyType == "" || k.Scheme == "" || k.KeyVal.Public == "" {
		return in_toto.Key{}, errors.New("securesystemslib key without keytype, scheme or public value")
	}
	canonical, err := cjson.EncodeCanonical(map[string]any{
		"keytype":               k.KeyType,
		"scheme":                k.Scheme,
		"keyid_hash_algorithms": k.KeyIDHashAlgorithms,
		"keyval":                map[string]string{"public": k.KeyVal.Public},
	})
	if err != nil {
		return in_toto.Key{}, err
	}
	sum := sha256.Sum256(canonical)
	id := hex.EncodeToString(sum[:])
	if k.KeyID != "" && k.KeyID != id {
		return in_toto.Key{}, fmt.Errorf("states key id %s, computed %s", k.KeyID, id)
	}
	k.KeyID = id
	return k, nil
}

// isKeyID reports whether s looks like an in-toto key id (lower-case hex sha256).
func isKeyID(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && s == strings.ToLower(s)
}
