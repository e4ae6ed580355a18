// Package verify makes relocate's decisions about an archive: whether its
// table of contents, index and manifests agree, whether every blob is present
// with the right size and digest, and (in later stages) whether trust
// metadata and site policy vouch for what it carries. Its findings are
// Problems; a refusal is an *Error, which the CLI maps to exit code 3.
//
// It never moves bytes over the network.
package verify
