// Package testtuf builds real TUF repositories for tests, with go-tuf's
// metadata API, so that the code which verifies a TUF chain at the far side
// of the air gap can be exercised against genuine, correctly signed metadata
// and against the attacks TUF defends from: rollback, freeze, mix-and-match,
// forged thresholds and root rotations signed by the wrong keys.
//
// A Repo holds every role's keys and metadata in memory. Tests change it
// (AddTarget, RotateRoot, SetExpires, SignWith, ...) and then call Publish,
// which re-signs what changed and records the files exactly as a repository
// with consistent snapshots serves them ("3.root.json", "timestamp.json",
// "7.snapshot.json", "2.targets.json", "1.releases.json", ...). Files, Save
// and Serve hand those files to the code under test, on disk, in an archive
// or over HTTP.
//
// Keys are fresh ed25519 keys per Repo; everything else is deterministic.
// The package is for tests only: it holds private keys in memory and makes
// no attempt to be a safe repository.
package testtuf
