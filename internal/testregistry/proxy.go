package testregistry

import (
	"errors"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Fault is a failure a Proxy injects.
type Fault string

const (
	// Fault500 answers 500 without passing the request on.
	Fault500 Fault = "500"
	// Fault429 answers 429 with a Retry-After, without passing the request on.
	Fault429 Fault = "429"
	// FaultReset resets the connection without passing the request on.
	FaultReset Fault = "reset"
	// FaultCut passes a GET on and cuts the response body short, dropping
	// the connection halfway (the client sees a body shorter than its
	// Content-Length).
	FaultCut Fault = "cut"
)

// AllFaults are the faults a Proxy injects by default.
var AllFaults = []Fault{Fault500, Fault429, FaultReset, FaultCut}

// ProxyOptions configures a Proxy.
type ProxyOptions struct {
	// Intercept, if set, sees every request first and answers it itself by
	// returning true. It may also replace r.Body or r.URL to watch or
	// change what is passed on.
	Intercept func(http.ResponseWriter, *http.Request) bool
	// FaultRate is the probability, from 0 to 1, that a request fails with
	// one of Faults, drawn from a generator seeded with Seed.
	FaultRate float64
	Seed      uint64
	// Faults are the kinds injected, each equally likely (default
	// AllFaults). FaultCut applies to GET requests only; other requests
	// drawn for it get one of the other kinds. Only FaultCut passes the
	// request on, so an injected fault never leaves a half-done upload in
	// the registry: what the registry keeps is the client's doing.
	Faults []Fault
	// RetryAfter is the Retry-After header of injected 429s (default "1").
	RetryAfter string
}

// Proxy is an HTTP reverse proxy on 127.0.0.1 in front of a registry, for
// tests: it can intercept requests and inject faults as a bad network or
// a struggling registry would.
type Proxy struct {
	// Host is "127.0.0.1:PORT".
	Host string

	o        ProxyOptions
	mu       sync.Mutex
	rng      *rand.Rand
	injected map[Fault]int
	requests int
}

// NewProxy starts a proxy in front of target (HOST:PORT, plain HTTP) and
// closes it when t ends.
func NewProxy(t testing.TB, target string, o ProxyOptions) *Proxy {
	t.Helper()
	if len(o.Faults) == 0 {
		o.Faults = AllFaults
	}
	if o.RetryAfter == "" {
		o.RetryAfter = "1"
	}
	p := &Proxy{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)), injected: map[Fault]int{}}
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32, DisableCompression: true}
	rp.ErrorLog = log.New(io.Discard, "", 0)
	// Cut responses go through a proxy that flushes every write, so that
	// the client has the headers and part of the body when the connection
	// drops.
	cutter := httputil.NewSingleHostReverseProxy(u)
	cutter.Transport, cutter.ErrorLog, cutter.FlushInterval = rp.Transport, rp.ErrorLog, -1
	cutter.ModifyResponse = func(resp *http.Response) error {
		left := int64(512)
		if resp.ContentLength >= 0 {
			left = resp.ContentLength / 2
		}
		resp.Body = &cutBody{rc: resp.Body, left: left}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Intercept != nil && o.Intercept(w, r) {
			return
		}
		switch p.draw(r) {
		case Fault500:
			http.Error(w, "injected fault", http.StatusInternalServerError)
			return
		case Fault429:
			w.Header().Set("Retry-After", o.RetryAfter)
			http.Error(w, "injected fault: slow down", http.StatusTooManyRequests)
			return
		case FaultReset:
			reset(w)
			return
		case FaultCut:
			cutter.ServeHTTP(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	t.Cleanup(srv.Close)
	return p
}

// draw decides the fate of a request.
func (p *Proxy) draw(r *http.Request) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if p.o.FaultRate <= 0 || p.rng.Float64() >= p.o.FaultRate {
		return ""
	}
	kinds := p.o.Faults
	if r.Method != http.MethodGet {
		kinds = slices.DeleteFunc(slices.Clone(kinds), func(f Fault) bool { return f == FaultCut })
		if len(kinds) == 0 {
			return ""
		}
	}
	f := kinds[p.rng.IntN(len(kinds))]
	p.injected[f]++
	return f
}

// Injected counts the faults injected so far, by kind.
func (p *Proxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Fault]int{}
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

// Requests counts the requests seen so far (intercepted ones excepted).
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// reset drops the connection with a TCP reset.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// cutBody ends with an error after left bytes; the reverse proxy then
// aborts the response mid-body.
type cutBody struct {
	rc   io.ReadCloser
	left int64
}

var errCut = errors.New("injected fault: body cut short")

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutBody) Close() error { return c.rc.Close() }

// UploadBytes sums the sizes of the files in the upload areas (_uploads)
// of the repositories under prefix ("" for all): what unfinished or
// abandoned blob uploads keep on the registry's disk. It also lists the
// files that hold anything, for messages.
func (r *Registry) UploadBytes(prefix string) (int64, []string, error) {
	root := filepath.Join(r.Dir, "docker", "registry", "v2", "repositories", filepath.FromSlash(prefix))
	var total int64
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.Contains(filepath.ToSlash(path), "/_uploads/") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > 0 {
			total += info.Size()
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return total, files, err
}
