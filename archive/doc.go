// Package archive packs an OCI image layout into a tar stream and reads it
// back safely: deterministic headers (so the same content gives the same
// bytes), precomputed offsets (so layers can be written in parallel into a
// file), zstd/gzip detected by magic bytes, and the one reader of every tar
// relocate reads (its archives, thick bundles), which refuses path
// traversal, links, special files, sparse entries and unknown entries, and
// tells a corrupt archive (*Error) from a failing medium. OpenLayout reads a
// relocate archive back as a content source: its layout marker, index.json,
// table of contents and metadata blobs checked against their digests up
// front, then its layers at offsets or as the stream delivers them.
//
// It knows nothing of registries or trust.
package archive
