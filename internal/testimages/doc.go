// Package testimages generates reproducible synthetic container images and
// pushes them to a registry, for end-to-end tests and benchmarks.
//
// Layer payloads are pseudo-random (incompressible) bytes from a seeded
// ChaCha8 stream, wrapped in a tar with fixed metadata and a stored (level 0)
// gzip stream, so the same Spec always yields the same digests. Layers are
// regenerated on demand rather than buffered, so memory stays bounded
// regardless of LayerSize.
package testimages
