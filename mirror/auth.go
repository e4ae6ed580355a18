package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// AuthError is a registry refusing a request for want of valid
// credentials. Its message never holds a credential.
type AuthError struct {
	Host string
	// Anonymous: no credentials were sent (none found for the host), as
	// opposed to credentials the registry refused.
	Anonymous bool
	// Code is the registry's error code (UNAUTHORIZED, …), if it gave one.
	Code string
}

func (e *AuthError) Error() string {
	if e.Anonymous {
		return fmt.Sprintf("no credentials for %s, and the registry requires them: store them with relocate login %s (or give --username with --password-stdin)", e.Host, e.Host)
	}
	msg := fmt.Sprintf("authentication failed for %s: the registry refused the username and password", e.Host)
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	return msg
}

// anonymous reports whether auth sends no credentials.
func anonymous(auth authn.Authenticator) bool {
	if auth == authn.Anonymous {
		return true
	}
	cfg, err := auth.Authorization()
	return err == nil && (cfg == nil || *cfg == authn.AuthConfig{})
}

// authErr turns a token server's 401 into an AuthError.
func authErr(host string, auth authn.Authenticator, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusUnauthorized {
		return &AuthError{Host: host, Anonymous: anonymous(auth), Code: firstCode(te)}
	}
	return err
}

func firstCode(te *transport.Error) string {
	for _, d := range te.Errors {
		if c := cleanCode(string(d.Code)); c != "" {
			return c
		}
	}
	return ""
}

// authCheck turns a registry's 401 into an AuthError: by then the
// authenticated transport under it has done what it could (a bearer token
// is refreshed once), so the credentials are missing or wrong.
type authCheck struct {
	host      string
	anonymous bool
	inner     http.RoundTripper
}

func (a authCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.inner.RoundTrip(r)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusUnauthorized {
			return nil, &AuthError{Host: a.host, Anonymous: a.anonymous, Code: firstCode(te)}
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusUnauthorized || !strings.EqualFold(r.URL.Host, a.host) {
		return resp, nil
	}
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	e := &AuthError{Host: a.host, Anonymous: a.anonymous}
	for _, d := range body.Errors {
		if e.Code = cleanCode(d.Code); e.Code != "" {
			break
		}
	}
	return nil, e
}

// cleanCode keeps an error code if it is one (letters and underscores): a
// hostile registry must not be able to make relocate print what it likes,
// such as the password it was just sent.
func cleanCode(s string) string {
	if len(s) == 0 || len(s) > 40 {
		return ""
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '_') {
			return ""
		}
	}
	return s
}

// CheckCredentials checks, as docker login does, that the registry at host
// (HOST[:PORT]) accepts the credentials the client's keychain gives for it:
// nil if it does (or needs none), an *AuthError if not.
func (c *Client) CheckCredentials(ctx context.Context, host string) error {
	if c.optErr != nil {
		return c.optErr
	}
	reg, err := name.NewRegistry(host, name.StrictValidation)
	if err != nil {
		return err
	}
	c.register(reg)
	reg = c.registry(reg)
	return c.retry1(ctx, func() error {
		ch, err := c.challenge(ctx, reg)
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", host, err)
		}
		if ch.Scheme == "" {
			return nil // the registry lets anyone in
		}
		auth, err := authn.Resolve(ctx, c.keychain, reg)
		if err != nil {
			return fmt.Errorf("credentials for %s: %w", host, err)
		}
		inner := transport.NewUserAgent(c.base, c.userAgent)
		var tok *transport.Token
		if strings.EqualFold(ch.Scheme, "bearer") {
			// No scope: the token server checks the credentials alone.
			if tok, err = transport.Exchange(ctx, reg, auth, inner, nil, ch); err != nil {
				return fmt.Errorf("connecting to %s: %w", host, authErr(reg.RegistryStr(), auth, err))
			}
			if tok.Token == "" {
				tok.Token = tok.AccessToken
			}
		}
		rt, err := transport.FromToken(reg, auth, inner, ch, tok)
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", host, err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme(reg.RegistryStr())+"://"+reg.RegistryStr()+"/v2/", nil)
		resp, err := (&http.Client{Transport: authCheck{host: reg.RegistryStr(), anonymous: anonymous(auth), inner: rt}}).Do(req)
		if err != nil {
			var ae *AuthError
			if errors.As(err, &ae) {
				return ae
			}
			return fmt.Errorf("connecting to %s: %w", host, err)
		}
		defer resp.Body.Close()
		return statusErr(resp, http.StatusOK)
	})
}

// StaticKeychain gives username and password to the named registries
// (HOST[:PORT], as in references; docker.io means Docker Hub) and nothing
// to any other.
func StaticKeychain(username, password string, registries ...string) authn.Keychain {
	k := staticKeychain{auth: &authn.Basic{Username: username, Password: password}, hosts: map[string]bool{}}
	for _, r := range registries {
		k.hosts[registryKey(r)] = true
	}
	return k
}

type staticKeychain struct {
	auth  authn.Authenticator
	hosts map[string]bool
}

func (k staticKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	if k.hosts[registryKey(target.RegistryStr())] {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

// registryKey is the name a registry goes by: lower case, docker.io as
// index.docker.io.
func registryKey(host string) string {
	if reg, err := name.NewRegistry(host); err == nil {
		return strings.ToLower(reg.RegistryStr())
	}
	return strings.ToLower(host)
}
