// Package signature verifies, offline, the signatures attached to one image
// digest as an archive carries them: cosign signatures and attestations (the
// `sha256-<hex>.sig/.att` tag form with its annotations, and Sigstore bundles
// attached as OCI referrers) and notation signatures.
//
// A site states what it requires as Requirements (JSON: cosign public keys,
// any one or N of M; cosign keyless identities under a Sigstore trusted root;
// a notation trust store and trust policy; an attestation of a predicate
// type). Load turns a Requirement into a Checker, reading key files, the
// trusted root and the trust policy once. Collect gathers the signatures
// attached to a Subject from the archive through a Fetcher; a Checker then
// says which signature satisfied the requirement, or refuses with a *Failure
// whose Reason says why: no signature, wrong key, identity mismatch, digest
// mismatch, certificate expired and no timestamp, bad transparency-log proof,
// not a signature, and a few more.
//
// The cryptography and the formats are the field's libraries: sigstore-go
// (bundles, trusted root, Rekor inclusion proofs and signed entry
// timestamps, RFC 3161 timestamps, certificate chains, SCTs) and notation-go
// (JWS and COSE envelopes, trust stores and policies). This package only
// finds the signed material in the archive, binds it to the image digest and
// names the reason of a refusal. It never makes a network call: revocation,
// which notation would check online, must be set to "log" or "skip" in the
// trust policy, and Rekor and timestamp evidence is what travelled with the
// signature.
package signature
