// Package archive packs an OCI image layout into a tar stream and reads it
// back safely: deterministic headers (so the same content gives the same
// bytes), precomputed offsets (so layers can be written in parallel into a
// file), zstd/gzip detected by magic bytes, and a reader that refuses path
// traversal, links, special files and unknown entries.
//
// It knows nothing of registries or trust.
package archive
