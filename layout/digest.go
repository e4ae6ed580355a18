package layout

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// IntegrityError is content that does not match the digest or size it was
// asked for by.
type IntegrityError struct {
	Where string // reference or repository and digest
	Want  v1.Hash
	Got   string // digest or size actually seen
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("%s: content does not match %s (got %s)", e.Where, e.Want, e.Got)
}

// Reason is the message without the location, for a problem that names it.
func (e *IntegrityError) Reason() string {
	return "content does not match its digest (got " + e.Got + ")"
}

// NewHasher returns the hash for a digest's algorithm.
func NewHasher(d v1.Hash) (hash.Hash, error) {
	switch d.Algorithm {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported digest algorithm %q", d.Algorithm)
}

// CopyVerified copies exactly desc.Size bytes from r to w and checks the digest.
func CopyVerified(w io.Writer, r io.Reader, desc v1.Descriptor, where string) error {
	vr, err := NewVerifyingReader(r, desc, where)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, vr); err != nil {
		if vr.Err() != nil {
			return vr.Err()
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	return vr.Err()
}

// VerifyingReader passes through exactly the size of a descriptor and checks
// the digest before releasing the final bytes, so a consumer such as an
// upload never receives a complete body that does not match.
type VerifyingReader struct {
	r     io.Reader
	h     hash.Hash
	desc  v1.Descriptor
	where string
	n     int64
	err   error
}

// NewVerifyingReader wraps r, which must hold desc's content.
func NewVerifyingReader(r io.Reader, desc v1.Descriptor, where string) (*VerifyingReader, error) {
	h, err := NewHasher(desc.Digest)
	if err != nil {
		return nil, err
	}
	return &VerifyingReader{r: io.LimitReader(r, desc.Size+1), h: h, desc: desc, where: where}, nil
}

func (v *VerifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.n > v.desc.Size:
		v.err = &IntegrityError{Where: v.where, Want: v.desc.Digest, Got: fmt.Sprintf("more than %d bytes", v.desc.Size)}
		return 0, v.err
	case v.n == v.desc.Size:
		if got := fmt.Sprintf("%x", v.h.Sum(nil)); got != v.desc.Digest.Hex {
			v.err = &IntegrityError{Where: v.where, Want: v.desc.Digest, Got: v.desc.Digest.Algorithm + ":" + got}
			return 0, v.err
		}
		v.err = io.EOF
		return n, nil
	case err == io.EOF:
		v.err = &IntegrityError{Where: v.where, Want: v.desc.Digest, Got: fmt.Sprintf("%d bytes instead of %d", v.n, v.desc.Size)}
		return 0, v.err
	}
	return n, err
}

// Err is the integrity error seen so far, if any.
func (v *VerifyingReader) Err() error {
	if v.err == io.EOF {
		return nil
	}
	return v.err
}
