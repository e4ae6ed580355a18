// Package bundle reads and writes Cloud Native Application Bundles (CNAB)
// for relocation, without any registry I/O.
//
// A thin bundle is its bundle.json; its exact bytes matter, because their
// sha256 is what CNAB Security signs as a TUF target, so a Bundle keeps them
// next to cnab-go's parse. A thick bundle is a gzipped tar holding
// bundle.json and an OCI image layout under artifacts/layout/; OpenThick
// streams it with path, type, size and digest checks. In a registry a bundle
// takes the form cnab-to-oci writes (an OCI index whose config manifest
// carries bundle.json byte for byte, beside the bundle's images):
// BuildStored makes it, ParseStored reads it back. RelocationMapping builds
// the relocation-mapping.json of CNAB core spec 103, and SecurityLevel names
// the CNAB Security (spec 300) level a verification reached.
package bundle
