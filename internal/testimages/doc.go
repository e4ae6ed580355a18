// Package testimages generates reproducible synthetic container images and
// pushes them to a registry, for end-to-end tests and benchmarks.
//
// Layer payloads are pseudo-random (incompressible) bytes from a seeded
// ChaCha8 stream, wrapped in a tar with fixed metadata and a stored (level 0)
// gzip stream, so the same Spec always yields the same digests. Layers are
// regenerated on demand rather than buffered, so memory stays bounded
// regardless of LayerSize. Layer bytes do not depend on Docker vs OCI, so
// both flavours of the same Spec share layer digests but not manifests.
//
// Image 0 is pushed first; the rest are pushed concurrently and mount the
// shared layers from image 0's repository rather than uploading them again.
package testimages
