package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// tally counts requests by "METHOD endpoint", e.g. "PUT upload".
type tally map[string]int

func (t tally) total() int {
	n := 0
	for _, c := range t {
		n += c
	}
	return n
}

// perImage is the requests per image of a set of n, the registry pings
// (once a run, whatever the size) aside.
func (t tally) perImage(n int) float64 {
	pings := 0
	for k, c := range t {
		if strings.HasSuffix(k, " ping") {
			pings += c
		}
	}
	return float64(t.total()-pings) / float64(n)
}

// String lists the counts, most frequent first, for the report.
func (t tally) String() string {
	keys := slices.Collect(maps.Keys(t))
	slices.SortFunc(keys, func(a, b string) int {
		if t[a] != t[b] {
			return t[b] - t[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", t[k], k)
	}
	return strings.Join(parts, ", ")
}

// countingProxy is a reverse proxy on 127.0.0.1 in front of a registry
// that counts the requests passing through it. It runs in the bench's
// process: it needs no tool of its own, and `go test -short` can run it.
type countingProxy struct {
	host string // "127.0.0.1:PORT"
	srv  *http.Server
	tr   *http.Transport

	mu     sync.Mutex
	counts tally
}

// startCountingProxy proxies to target ("HOST:PORT", plain HTTP).
func startCountingProxy(target string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("counting proxy: %w", err)
	}
	p := &countingProxy{
		host:   ln.Addr().String(),
		tr:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true},
		counts: tally{},
	}
	// The Host header passes through unchanged, so the registry builds its
	// upload Locations on the proxy's address and every request is counted.
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.Transport = p.tr
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.count(r.Method + " " + endpoint(r.URL.Path))
			rp.ServeHTTP(w, r)
		}),
		ErrorLog:          log.New(io.Discard, "", 0),
		ReadHeaderTimeout: time.Minute,
	}
	go p.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on close
	return p, nil
}

func (p *countingProxy) count(key string) {
	p.mu.Lock()
	p.counts[key]++
	p.mu.Unlock()
}

// take returns the counts so far and starts again from zero.
func (p *countingProxy) take() tally {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.counts
	p.counts = tally{}
	return t
}

func (p *countingProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	p.tr.CloseIdleConnections()
}

// endpoint names the kind of registry API a path addresses.
func endpoint(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "ping"
	case strings.Contains(path, "/blobs/uploads/") || strings.HasSuffix(path, "/blobs/uploads"):
		return "upload"
	case strings.Contains(path, "/blobs/"):
		return "blob"
	case strings.Contains(path, "/manifests/"):
		return "manifest"
	case strings.Contains(path, "/referrers/"):
		return "referrers"
	case strings.HasSuffix(path, "/tags/list"):
		return "tags"
	case strings.HasSuffix(path, "/_catalog"):
		return "catalog"
	}
	return "other"
}
