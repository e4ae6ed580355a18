package main

import (
	"bufio"
	"bytes"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relocate-dev/relocate/internal/pause"
	"github.com/relocate-dev/relocate/internal/testregistry"
	"github.com/relocate-dev/relocate/internal/testtuf"
	"github.com/relocate-dev/relocate/tufstore"
)

// The tests of this file kill relocate with SIGKILL, at moments chosen at
// random and at named points (internal/pause), and check that running it
// again ends exactly where a run never killed ends.

// buildRelocate builds the command into a temporary directory.
func buildRelocate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "relocate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer collects a process's stderr while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// killAt runs bin with args and kills it with SIGKILL when it reaches
// the pause point point, or, with point "", after delay. It reports
// whether the process was killed (it may finish first) and its stderr.
func killAt(t *testing.T, bin, point string, delay time.Duration, args ...string) (killed bool, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	if point != "" {
		cmd.Env = append(cmd.Env, pause.Env+"="+point)
	}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	paused := make(chan struct{})
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			out.mu.Lock()
			out.b.Write(append(sc.Bytes(), '\n'))
			out.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "relocate: paused at ") {
				close(paused)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { <-read; exited <- cmd.Wait() }()
	var when <-chan time.Time
	if point == "" {
		when = time.After(delay)
	}
	select {
	case <-paused:
	case <-when:
	case <-exited:
		return false, out.String()
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("relocate %s: neither paused at %q nor finished", strings.Join(args, " "), point)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	return true, out.String()
}

// slowBlobs is a proxy in front of a registry that sends blob content
// slowly, in small pieces, while slow is set: an export through it takes
// seconds, and a kill lands in the middle of layers.
func slowBlobs(t *testing.T, target string, slow *bool) string {
	t.Helper()
	var mu sync.Mutex
	return testregistry.NewProxy(t, target, testregistry.ProxyOptions{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		on := *slow
		mu.Unlock()
		if !on || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
			return false
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+target+r.URL.RequestURI(), nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 4<<10)
		for {
			n, err := resp.Body.Read(buf)
			w.Write(buf[:n])
			w.(http.Flusher).Flush()
			if err != nil {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
	}}).Host
}

// TestExportKilledAnywhere kills exports at random moments, several times
// in a row, and then lets one finish: the archive is byte for byte the one
// an export never killed writes, and nothing is left beside it. Layers
// that a killed run completed and synced are reused (and checked) by the
// next.
func TestExportKilledAnywhere(t *testing.T) {
	needRegistries(t)
	bin := buildRelocate(t)
	slow := false
	host := slowBlobs(t, src.Host, &slow)
	var through []string
	for _, r := range refs {
		through = append(through, host+strings.TrimPrefix(r, src.Host))
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	for _, name := range []string{"site.tar", "site.tar.zst"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			want := filepath.Join(t.TempDir(), name)
			mustRun(t, append([]string{"export", "-o", want, "--plain-http", "-q"}, through...)...)
			out := filepath.Join(dir, name)
			args := append([]string{"export", "-o", out, "--plain-http", "--jobs", "2"}, through...)
			slow = true
			resumed := 0
			// Two kills at random moments, one after the partial was checked
			// and before anything is written, one after everything was
			// written and before the rename.
			for round, point := range []string{"", "", "export-resumed", "export-written"} {
				delay := time.Duration(300+rng.Intn(3000)) * time.Millisecond
				killed, stderr := killAt(t, bin, point, delay, args...)
				t.Logf("round %d: killed %v at %q after %s", round, killed, point, delay)
				if strings.Contains(stderr, "resumed an interrupted export") {
					resumed++
				}
				if _, err := os.Stat(out); killed && !os.IsNotExist(err) {
					t.Fatalf("round %d: the archive exists although the export was killed", round)
				}
				os.Remove(out) // an export that finished: the next round starts over
			}
			slow = false
			r := mustRun(t, args...)
			if strings.Contains(r.stderr, "resumed an interrupted export") {
				resumed++
			}
			got, _ := os.ReadFile(out)
			if w, _ := os.ReadFile(want); len(got) == 0 || !bytes.Equal(got, w) {
				t.Fatalf("archive after killed runs differs from one never killed (%d vs %d bytes)", len(got), len(w))
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("left beside the archive: %v", names)
			}
			if !strings.Contains(r.stderr, "resumed an interrupted export: reused") {
				t.Errorf("the run after a kill at export-written did not resume (%d runs resumed):\n%s", resumed, r.stderr)
			}
			mustRun(t, "verify", out, "-q")
		})
	}
}

// TestExportResumesAfterNetworkFailure: a registry that stops serving
// some blobs fails the export (exit 1), which keeps what it completed and
// says where; the next run reuses that, checked, fetches no layer it
// already had, and writes the archive one uninterrupted run writes.
func TestExportResumesAfterNetworkFailure(t *testing.T) {
	needRegistries(t)
	for _, name := range []string{"site.tar", "site.tar.gz"} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			down := false
			fetched := map[string]int{} // blob digest → successful fetches
			layers := map[string]bool{}
			proxy := testregistry.NewProxy(t, src.Host, testregistry.ProxyOptions{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
				_, d, ok := strings.Cut(r.URL.Path, "/blobs/")
				if r.Method != http.MethodGet || !ok {
					return false
				}
				mu.Lock()
				defer mu.Unlock()
				if down && layers[d] && strings.Contains(r.URL.Path, "/team/multi/") {
					http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
					return true
				}
				fetched[d]++
				return false
			}}).Host
			var through []string
			for _, r := range refs {
				through = append(through, proxy+strings.TrimPrefix(r, src.Host))
			}
			want := filepath.Join(t.TempDir(), name)
			mustRun(t, append([]string{"export", "-o", want, "--plain-http", "-q"}, through...)...)
			got := layersOf(t, through)
			mu.Lock()
			layers = got
			mu.Unlock()

			dir := t.TempDir()
			out := filepath.Join(dir, name)
			args := append([]string{"export", "-o", out, "--plain-http", "--retries", "0", "--jobs", "1"}, through...)
			mu.Lock()
			down, fetched = true, map[string]int{}
			mu.Unlock()
			r := relocateCmd(t, nil, args...)
			partial := "." + name + ".relocate-partial"
			if r.code != exitFailure || !strings.Contains(r.stderr, "team/multi") || !strings.Contains(r.stderr, partial) || !strings.Contains(r.stderr, "run the same export again to resume") {
				t.Fatalf("export with the registry down: exit %d, want %d naming the blob and %s\n%s", r.code, exitFailure, partial, r.stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatal("the archive exists although the export failed")
			}
			mu.Lock()
			first := fetched
			down, fetched = false, map[string]int{}
			mu.Unlock()
			r = mustRun(t, args...)
			if !strings.Contains(r.stderr, "resumed an interrupted export: reused") {
				t.Errorf("rerun did not say it resumed:\n%s", r.stderr)
			}
			mu.Lock()
			had := 0
			for d := range first {
				if layers[d] {
					had++
					if fetched[d] > 0 {
						t.Errorf("layer %s fetched again although the failed run completed it", d)
					}
				}
			}
			mu.Unlock()
			if had == 0 {
				t.Fatal("the failed run completed no layer: nothing to resume")
			}
			resumed, _ := os.ReadFile(out)
			if w, _ := os.ReadFile(want); len(resumed) == 0 || !bytes.Equal(resumed, w) {
				t.Fatalf("resumed archive differs from one written in one run")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("files left beside the archive: %v", ents)
			}
		})
	}
}

// TestImportKilledAnywhere kills an import with SIGKILL several times in a
// row, at points chosen at random in order (during uploads, after the
// blobs, after the manifests, between tags, after the tags, while the
// trusted state is committed: after the new generation is written, after
// the swap, before the audit record), then lets it finish: tags, digests
// and the trusted state are those of an import never killed. After each
// kill the state is readable, its lock free, and no tag points at an
// image that is not whole.
func TestImportKilledAnywhere(t *testing.T) {
	s := newTUFSite(t, testtuf.Options{})
	s.vouch("releases", images[1], images[2])
	path := filepath.Join(t.TempDir(), "site.tar")
	mustRun(t, "export", "-o", path, "--plain-http", "-q", refs[0], refs[1], refs[2], "--tuf", "team="+s.repo.Serve(t))
	bin := buildRelocate(t)
	importArgs := func(to, state string) []string {
		return []string{"import", path, "--to", to, "--plain-http", "--state", state, "--trust", "team=" + s.root}
	}
	refState := t.TempDir()
	mustRun(t, importArgs(dst.Host+"/"+s.prefix+"-whole", refState)...)
	wantDigest := map[string]string{}
	for _, im := range images[:3] {
		repo, tag := repoTag(im.Ref)
		wantDigest[repo+":"+tag] = im.Digest
	}

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	stages := []string{"upload", "import-blobs", "import-manifests", "import-tag", "import-tag#2", "import-tagged"}
	// The commit: killed after the new generation is written (the rerun
	// commits it), then after the swap or before the audit record (the
	// rerun finds the state in force).
	commit := []string{"state-swapped", "import-committed"}
	var points []string
	for _, i := range rng.Perm(len(stages))[:3] {
		points = append(points, stages[i])
	}
	slices.SortFunc(points, func(a, b string) int { return slices.Index(stages, a) - slices.Index(stages, b) })
	points = append(points, "state-written", commit[rng.Intn(len(commit))])

	uploading := make(chan struct{}, 1000)
	slow := dstProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			uploading <- struct{}{}
			time.Sleep(300 * time.Millisecond)
		}
		return false
	})
	state := t.TempDir()
	for _, point := range points {
		var killed bool
		var stderr string
		if point == "upload" {
			// A random moment while blobs go up.
			killed, stderr = killAt(t, bin, "", time.Duration(100+rng.Intn(900))*time.Millisecond, importArgs(slow+"/"+s.prefix, state)...)
		} else {
			killed, stderr = killAt(t, bin, point, 0, importArgs(dst.Host+"/"+s.prefix, state)...)
		}
		t.Logf("killed %v at %s", killed, point)
		if !killed && !strings.Contains(stderr, "pushed") && !strings.Contains(stderr, "unchanged") {
			t.Fatalf("import not killed at %s, and did not finish:\n%s", point, stderr)
		}
		store, _ := tufstore.Open(state)
		if _, err := store.Load(); err != nil {
			t.Fatalf("state unreadable after a kill at %s: %v", point, err)
		}
		if err := store.Lock(); err != nil {
			t.Fatalf("lock still held after a kill at %s: %v", point, err)
		}
		store.Unlock()
		for _, tag := range tagsUnder(t, s.prefix) {
			rel := strings.TrimPrefix(tag, s.prefix+"/")
			want, ok := wantDigest[rel]
			if !ok {
				continue // cosign tags and the like
			}
			repo, tg, _ := strings.Cut(rel, ":")
			if got := headDigest(t, dst.Host, s.prefix+"/"+repo, tg); got != want {
				t.Fatalf("after a kill at %s, %s points at %s, want %s", point, tag, got, want)
			}
		}
	}
	mustRun(t, importArgs(dst.Host+"/"+s.prefix, state)...)

	rel := func(prefix string) []string {
		var out []string
		for _, tag := range tagsUnder(t, prefix) {
			r := strings.TrimPrefix(tag, prefix+"/")
			repo, tg, _ := strings.Cut(r, ":")
			out = append(out, r+"@"+headDigest(t, dst.Host, prefix+"/"+repo, tg))
		}
		slices.Sort(out)
		return out
	}
	if got, want := rel(s.prefix), rel(s.prefix+"-whole"); !slices.Equal(got, want) {
		t.Errorf("tags after killed imports:\n%v\nwant (an import never killed):\n%v", got, want)
	}
	if got, want := snapshotState(t, state), snapshotState(t, refState); got != want {
		t.Errorf("trusted state after killed imports differs from an import never killed:\n%s\nwant:\n%s", got, want)
	}
	if log, _ := os.ReadFile(filepath.Join(state, "audit.log")); !bytes.Contains(log, []byte(`"verdict":"ok"`)) {
		t.Errorf("no successful import in the audit log:\n%s", log)
	}
}

// layersOf exports refs and returns the digests of the layers the archive
// carries.
func layersOf(t *testing.T, refs []string) map[string]bool {
	t.Helper()
	plain := filepath.Join(t.TempDir(), "plain.tar")
	mustRun(t, append([]string{"export", "-o", plain, "--plain-http", "-q"}, refs...)...)
	var toc struct {
		Blobs []struct{ Digest, Kind string }
	}
	readEntry(t, plain, "relocate-toc.json", &toc)
	layers := map[string]bool{}
	for _, b := range toc.Blobs {
		if b.Kind == "layer" {
			layers[b.Digest] = true
		}
	}
	return layers
}

// TestExportNoResume: --no-resume removes what a failed export kept and
// starts over; failing too, it leaves nothing behind.
func TestExportNoResume(t *testing.T) {
	needRegistries(t)
	var mu sync.Mutex
	down := false
	layers := map[string]bool{}
	proxy := testregistry.NewProxy(t, src.Host, testregistry.ProxyOptions{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		_, d, _ := strings.Cut(r.URL.Path, "/blobs/")
		mu.Lock()
		defer mu.Unlock()
		if down && layers[d] && strings.Contains(r.URL.Path, "/other/list/") {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return true
		}
		return false
	}}).Host
	var through []string
	for _, r := range refs {
		through = append(through, proxy+strings.TrimPrefix(r, src.Host))
	}
	got := layersOf(t, through)
	mu.Lock()
	layers, down = got, true
	mu.Unlock()
	dir := t.TempDir()
	out := filepath.Join(dir, "site.tar")
	args := append([]string{"export", "-o", out, "--plain-http", "--retries", "0", "--jobs", "1"}, through...)
	if r := relocateCmd(t, nil, args...); r.code != exitFailure || !strings.Contains(r.stderr, "run the same export again to resume") {
		t.Fatalf("export with the registry down: exit %d, want %d, keeping what it completed\n%s", r.code, exitFailure, r.stderr)
	}
	r := relocateCmd(t, nil, append(args, "--no-resume")...)
	if r.code != exitFailure || strings.Contains(r.stderr, "run the same export again") {
		t.Fatalf("--no-resume with the registry down: exit %d, want %d and nothing kept\n%s", r.code, exitFailure, r.stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed --no-resume export left %v", ents)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	r = mustRun(t, append(args, "--no-resume")...)
	if strings.Contains(r.stderr, "resumed") {
		t.Errorf("--no-resume resumed:\n%s", r.stderr)
	}
	mustRun(t, "verify", out, "-q")
}
