package mirror

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/relocate-dev/relocate/layout"
)

// DefaultRetries is how many times a failed request is retried by default.
const DefaultRetries = 5

// RetryPolicy says how requests that failed for a reason that may pass
// (5xx, 429, a reset connection, a body cut short) are retried: up to
// Retries more times, waiting Backoff, then twice as long each time (with
// jitter) up to MaxBackoff, or as long as the registry's Retry-After asks,
// up to MaxRetryAfter. Content that does not match its digest is never
// retried.
type RetryPolicy struct {
	Retries       int
	Backoff       time.Duration
	MaxBackoff    time.Duration
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy is the policy of a Client made without WithRetryPolicy.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{Retries: DefaultRetries, Backoff: 250 * time.Millisecond, MaxBackoff: 8 * time.Second, MaxRetryAfter: 60 * time.Second}
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.Retries < 0 {
		p.Retries = 0
	}
	if p.Backoff <= 0 {
		p.Backoff = d.Backoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = d.MaxBackoff
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = d.MaxRetryAfter
	}
	return p
}

// wait is how long to wait before retry number attempt+1.
func (p RetryPolicy) wait(attempt int, retryAfter time.Duration) time.Duration {
	d := p.Backoff
	for i := 0; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	// Equal jitter: half fixed, half random, so that parallel transfers
	// that failed together do not come back together.
	d = d/2 + rand.N(d/2+1)
	if retryAfter > 0 {
		d = max(d, min(retryAfter, p.MaxRetryAfter))
	}
	return d
}

// StatusError is a response with an unexpected status, carrying the
// registry's own message.
type StatusError struct {
	Code       int
	Message    string
	RetryAfter time.Duration // from a Retry-After header, if any
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("registry answered %s: %s", strconv.Itoa(e.Code), e.Message)
}

// sourceError is a failure to read the content being uploaded (the
// archive): retrying the request would not help.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// transientStatus reports whether a status may pass if asked again.
func transientStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// transient reports whether err may pass on another attempt, and how long
// the registry asked to wait.
func transient(err error) (bool, time.Duration) {
	if err == nil {
		return false, 0
	}
	var (
		ie  *layout.IntegrityError
		nf  *NotFoundError
		pe  *PlainHTTPError
		fe  *ForeignLayerError
		se  *sourceError
		ae  *AuthError
		tle *TLSError
		st  *StatusError
		te  *transport.Error
		rhe tls.RecordHeaderError
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
		dns *net.DNSError
	)
	switch {
	case errors.As(err, &ie), errors.As(err, &nf), errors.As(err, &pe), errors.As(err, &fe), errors.As(err, &se),
		errors.As(err, &ae), errors.As(err, &tle):
		return false, 0
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, 0
	case errors.As(err, &st):
		return transientStatus(st.Code), st.RetryAfter
	case errors.As(err, &te):
		return transientStatus(te.StatusCode), 0
	case errors.As(err, &rhe), errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie):
		return false, 0
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return false, 0
	case errors.As(err, &dns):
		return dns.IsTemporary || dns.IsTimeout, 0
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return true, 0
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true, 0
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, 0
	}
	// What the standard library reports on a connection lost mid-request.
	msg := err.Error()
	for _, s := range []string{"connection reset", "broken pipe", "server closed idle connection", "unexpected EOF", "transport connection broken", "GOAWAY", "stream error"} {
		if strings.Contains(msg, s) {
			return true, 0
		}
	}
	return false, 0
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retry runs op until it succeeds, fails for a reason that will not pass,
// or the policy's retries are spent. op reports whether it made progress
// (bytes that need not be fetched again), which resets the count.
func (c *Client) retry(ctx context.Context, op func() (progressed bool, err error)) error {
	failures := 0
	for {
		progressed, err := op()
		if err == nil {
			return nil
		}
		if progressed {
			failures = 0
		}
		ok, after := transient(err)
		if !ok || failures >= c.policy.Retries || ctx.Err() != nil {
			if ok && failures > 0 {
				return fmt.Errorf("%w (after %d retries)", err, failures)
			}
			return err
		}
		c.retried.Add(1)
		if sleep(ctx, c.policy.wait(failures, after)) != nil {
			return err
		}
		failures++
	}
}

// retry1 is retry for an operation that makes no partial progress.
func (c *Client) retry1(ctx context.Context, op func() error) error {
	return c.retry(ctx, func() (bool, error) { return false, op() })
}

// Retried is how many requests were retried so far.
func (c *Client) Retried() int64 { return c.retried.Load() }

// Policy is the client's retry policy.
func (c *Client) Policy() RetryPolicy { return c.policy }
