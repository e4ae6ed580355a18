// Package notary carries Notary v1 (Docker Content Trust) trust data across
// an air gap. At export, Collect fetches a GUN's whole chain from a notary
// server: every root version, the timestamp, snapshot, targets and each
// delegation reachable from targets, by checksum as the notary client does.
// At the site, Verify runs the notary client's checks over that chain with
// no network: root rotations from a root the site pinned, a CA it trusts or
// the state an earlier import recorded (never trust on first use), root
// certificates issued to the GUN, signature thresholds over distinct keys,
// hashes and lengths down the chain, delegation path prefixes, rollback and
// expiry. Result.Target then resolves a tag as docker does.
//
// go-tuf cannot read Notary v1 metadata (different _type values, base64
// hashes, signature methods and x509 root keys), hence this verifier.
// It knows nothing of registries, archives or where the state is kept.
package notary
