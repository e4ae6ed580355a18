package relocate

import (
	"github.com/relocate-dev/relocate/archive"
	"github.com/relocate-dev/relocate/layout"
	"github.com/relocate-dev/relocate/verify"
)

// The types a caller of Export, Verify and Import names, so that it needs
// this package only (the CLI does).
type (
	// Compression of an archive: Zstd, Gzip or None.
	Compression = archive.Compression
	// Policy is the site's policy file (docs/trust.md).
	Policy = verify.Policy
	// Problem is one reason of a refusal, naming the entry, digest, role
	// or reference at fault.
	Problem = verify.Problem
	// SignatureResult is what verify and import decided of each image's
	// signatures under the policy.
	SignatureResult = verify.SignatureResult
	// TrustRepo is a TUF repository or Notary GUN an archive carries.
	TrustRepo = layout.TUFRepo
)

// Archive compressions.
const (
	None = archive.None
	Zstd = archive.Zstd
	Gzip = archive.Gzip
)

// ParseCompression reads "zstd", "gzip" or "none".
func ParseCompression(s string) (Compression, error) { return archive.ParseCompression(s) }

// LoadPolicy reads and checks a site policy file.
func LoadPolicy(path string) (*Policy, error) { return verify.LoadPolicy(path) }
