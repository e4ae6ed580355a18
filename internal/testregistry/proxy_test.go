package testregistry

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func upstream(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func get(p *Proxy, method string) (*http.Response, []byte, error) {
	req, _ := http.NewRequest(method, "http://"+p.Host+"/v2/x/blobs/sha256:00", strings.NewReader("payload"))
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestProxyFaults(t *testing.T) {
	body := strings.Repeat("blob bytes ", 1000)
	target := upstream(t, body)

	p := NewProxy(t, target, ProxyOptions{})
	if _, b, err := get(p, http.MethodGet); err != nil || string(b) != body {
		t.Fatalf("no faults: %v", err)
	}

	p = NewProxy(t, target, ProxyOptions{FaultRate: 1, Faults: []Fault{Fault500}})
	if resp, _, err := get(p, http.MethodGet); err != nil || resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("500: %v %v", resp, err)
	}
	p = NewProxy(t, target, ProxyOptions{FaultRate: 1, Faults: []Fault{Fault429}})
	if resp, _, err := get(p, http.MethodGet); err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("429: %v %v", resp, err)
	}
	p = NewProxy(t, target, ProxyOptions{FaultRate: 1, Faults: []Fault{FaultReset}})
	if _, _, err := get(p, http.MethodPatch); err == nil {
		t.Error("reset: no error")
	}
	p = NewProxy(t, target, ProxyOptions{FaultRate: 1, Faults: []Fault{FaultCut}})
	if _, b, err := get(p, http.MethodGet); !errors.Is(err, io.ErrUnexpectedEOF) || len(b) >= len(body) {
		t.Errorf("cut: %d of %d bytes, %v", len(b), len(body), err)
	}
	// Only GETs are cut: others are passed on untouched.
	if resp, _, err := get(p, http.MethodPatch); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("PATCH with only cuts to inject: %v %v", resp, err)
	}
	if n := p.Injected()[FaultCut]; n != 1 {
		t.Errorf("injected %d cuts, want 1", n)
	}

	// A seeded rate gives the same faults in the same order.
	counts := func() map[Fault]int {
		p := NewProxy(t, target, ProxyOptions{FaultRate: 0.3, Seed: 7})
		for range 50 {
			get(p, http.MethodGet)
		}
		return p.Injected()
	}
	a, b := counts(), counts()
	total := 0
	for k, v := range a {
		total += v
		if b[k] != v {
			t.Errorf("seeded runs differ: %v vs %v", a, b)
		}
	}
	if total < 5 || total > 30 {
		t.Errorf("%d faults in 50 requests at 30%%", total)
	}
}

func TestUploadBytes(t *testing.T) {
	r := &Registry{Dir: t.TempDir()}
	repos := filepath.Join(r.Dir, "docker", "registry", "v2", "repositories")
	write := func(rel string, n int) {
		p := filepath.Join(repos, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, n), 0o644)
	}
	write("a/app/_uploads/u1/data", 1000)
	write("a/app/_uploads/u1/startedat", 20)
	write("a/app/_layers/sha256/x/link", 71)
	write("b/app/_uploads/u2/data", 5)
	if n, files, err := r.UploadBytes("a"); err != nil || n != 1020 || len(files) != 2 {
		t.Errorf("under a: %d %v %v", n, files, err)
	}
	if n, _, err := r.UploadBytes(""); err != nil || n != 1025 {
		t.Errorf("all: %d %v", n, err)
	}
	if n, _, err := r.UploadBytes("absent"); err != nil || n != 0 {
		t.Errorf("absent prefix: %d %v", n, err)
	}
}
