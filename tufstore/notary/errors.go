package notary

import (
	"errors"
	"fmt"
)

// Reasons a chain is refused; test with errors.Is. They arrive wrapped in a
// *RoleError that names the GUN, role and version at fault.
var (
	ErrNoTrustAnchor = errors.New("no trusted root, pinned root or root CA: trust on first use refused")
	ErrThreshold     = errors.New("signature threshold not met")
	ErrKeyID         = errors.New("key ID does not match its key")
	ErrCertificate   = errors.New("root certificate not acceptable")
	ErrPinMismatch   = errors.New("root differs from the trusted root")
	ErrRollback      = errors.New("version lower than already trusted")
	ErrExpired       = errors.New("metadata expired")
	ErrHashMismatch  = errors.New("length or hash differs from the parent's meta")
	ErrMissing       = errors.New("metadata missing")
	ErrTooLarge      = errors.New("metadata too large")
	ErrMalformed     = errors.New("malformed metadata")
	ErrWrongType     = errors.New("wrong metadata type")
	ErrNotFound      = errors.New("target not found")
)

// RoleError is a failure of one role's metadata.
type RoleError struct {
	GUN     string
	Role    string
	Version int64 // 0 when the version is not known
	Err     error
}

func (e *RoleError) Error() string {
	if e.Version > 0 {
		return fmt.Sprintf("notary: GUN %q: role %s version %d: %v", e.GUN, e.Role, e.Version, e.Err)
	}
	return fmt.Sprintf("notary: GUN %q: role %s: %v", e.GUN, e.Role, e.Err)
}

func (e *RoleError) Unwrap() error { return e.Err }
