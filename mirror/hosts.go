package mirror

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// PlainHTTPError is a request relocate refused to send in clear text: to a
// host the user did not allow plain HTTP for, or with credentials to a host
// the user did not name.
type PlainHTTPError struct {
	Host        string
	Credentials bool // the request carried an Authorization header
}

func (e *PlainHTTPError) Error() string {
	if e.Credentials {
		return fmt.Sprintf("refusing to send credentials over plain HTTP to %s, a host not named with --plain-http-host or as a registry", e.Host)
	}
	return fmt.Sprintf("refusing plain HTTP to %s: HTTPS is required unless --plain-http-host %s (or --plain-http) allows it", e.Host, e.Host)
}

// hostPattern is one --plain-http-host value: a host, with or without a
// port. Without one it matches the host on any port.
type hostPattern struct{ host, port string }

func parseHostPattern(s string) (hostPattern, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" || strings.ContainsAny(s, "/@?#") {
		return hostPattern{}, fmt.Errorf("plain HTTP host %q: want HOST or HOST:PORT", s)
	}
	if h, p, err := net.SplitHostPort(s); err == nil {
		if h == "" || p == "" {
			return hostPattern{}, fmt.Errorf("plain HTTP host %q: want HOST or HOST:PORT", s)
		}
		return hostPattern{host: h, port: p}, nil
	}
	return hostPattern{host: strings.Trim(s, "[]")}, nil
}

func splitHost(hostport string) (host, port string) {
	hostport = strings.ToLower(hostport)
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.Trim(hostport, "[]"), ""
}

func (p hostPattern) matches(hostport string) bool {
	h, port := splitHost(hostport)
	return h == p.host && (p.port == "" || p.port == port)
}

// plain reports whether plain HTTP may be used with hostport.
func (c *Client) plain(hostport string) bool {
	return c.plainHTTP || c.explicitPlain(hostport)
}

func (c *Client) explicitPlain(hostport string) bool {
	for _, p := range c.plainHosts {
		if p.matches(hostport) {
			return true
		}
	}
	return false
}

// named reports whether credentials may travel over plain HTTP to
// hostport: the user named it with --plain-http-host, or, with --plain-http,
// it is a registry the client was asked to talk to.
func (c *Client) named(hostport string) bool {
	if c.explicitPlain(hostport) {
		return true
	}
	if !c.plainHTTP {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registries[strings.ToLower(hostport)]
}

func (c *Client) scheme(hostport string) string {
	if c.plain(hostport) {
		return "http"
	}
	return "https"
}

// guard sits under every request the client makes (pings, token requests,
// redirects, foreign URLs included): plain HTTP goes only to hosts the user
// allowed, and credentials over plain HTTP only to hosts the user named.
// go-containerregistry's defaults (HTTP for loopback and RFC 1918 addresses)
// never apply.
type guard struct {
	c     *Client
	inner http.RoundTripper
}

func (g guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.EqualFold(r.URL.Scheme, "http") {
		var err error
		switch {
		case !g.c.plain(r.URL.Host):
			err = &PlainHTTPError{Host: r.URL.Host}
		case r.Header.Get("Authorization") != "" && !g.c.named(r.URL.Host):
			err = &PlainHTTPError{Host: r.URL.Host, Credentials: true}
		}
		if err != nil {
			if r.Body != nil {
				r.Body.Close()
			}
			return nil, err
		}
	}
	return g.inner.RoundTrip(r)
}
