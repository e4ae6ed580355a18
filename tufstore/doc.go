// Package tufstore handles TUF metadata on both sides of the gap. At export
// it collects a repository's whole chain (every root version, timestamp,
// snapshot, targets and every delegated targets role it reaches). At the
// site it runs the TUF client workflow (go-tuf's updater) over the chain an
// archive carries, starting from the state that earlier imports recorded or
// from a root the site pinned, and it keeps that state: one directory whose
// generations are swapped atomically, a lock against concurrent imports, and
// an append-only audit log.
//
// It knows nothing of registries or archives.
package tufstore
