package testregistry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// binary is where the Debian package installs the registry.
	binary = "/usr/bin/docker-registry"

	// requireEnv makes New fail instead of skip when the binary is missing,
	// so CI cannot silently pass without exercising a real registry.
	requireEnv = "RELOCATE_REQUIRE_REGISTRY"

	configName = "config.yml"
	logName    = "registry.log"

	readyTimeout = 10 * time.Second
	pollInterval = 50 * time.Millisecond
	stopTimeout  = 5 * time.Second

	// portAttempts bounds retries when another process grabs the port
	// between our probe listener closing and the registry binding it.
	portAttempts = 5
)

// Registry is a running docker-registry process.
type Registry struct {
	// Host is "127.0.0.1:PORT", usable directly in image references.
	Host string
	// Dir holds the storage root, the config file and the log.
	Dir string
	// Scheme is "http", or "https" with Options.TLS.
	Scheme string

	cmd     *exec.Cmd
	logPath string
	client  *http.Client
	authed  bool          // answers 401 to anonymous requests
	exited  chan struct{} // closed once cmd.Wait returns
	waitErr error         // valid after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// errPortInUse marks a startup failure worth retrying on another port.
var errPortInUse = errors.New("port already in use")

// Options make a registry as sites run them: TLS from a private CA,
// perhaps requiring client certificates, and password authentication.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 issued by this CA.
	TLS *CA
	// ClientCAs, with TLS, requires a client certificate issued by one of
	// them (distribution's http.tls.clientcas).
	ClientCAs []*CA
	// Users requires HTTP basic authentication (htpasswd, bcrypt) from
	// these users, name → password.
	Users map[string]string
}

// Start starts a registry with storage in dir (created if needed). It is
// stopped by Stop, not by ctx: ctx bounds only the startup wait.
func Start(ctx context.Context, dir string) (*Registry, error) {
	return StartWith(ctx, dir, Options{})
}

// StartWith is Start with options.
func StartWith(ctx context.Context, dir string, o Options) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("testregistry: create dir: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("testregistry: resolve dir: %w", err)
	}
	for attempt := 1; ; attempt++ {
		r, err := start(ctx, abs, o)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return nil, err
		}
	}
}

func start(ctx context.Context, dir string, o Options) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	extra, probe, err := secure(dir, o)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, configName)
	if err := os.WriteFile(cfgPath, []byte(config(dir, host)+extra), 0o644); err != nil {
		return nil, fmt.Errorf("testregistry: write config: %w", err)
	}

	// Truncate so LogTail reflects only this process, not a failed attempt.
	logPath := filepath.Join(dir, logName)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("testregistry: create log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command(binary, "serve", cfgPath)
	cmd.Dir = dir
	cmd.Env = cleanEnv(os.Environ())
	// An *os.File avoids copy goroutines, so Wait never blocks on pipes.
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testregistry: start %s: %w", binary, err)
	}

	r := &Registry{
		Host:    host,
		Dir:     dir,
		Scheme:  "http",
		cmd:     cmd,
		logPath: logPath,
		client: &http.Client{
			Timeout:   time.Second,
			Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: probe},
		},
		authed: len(o.Users) > 0,
		exited: make(chan struct{}),
	}
	if o.TLS != nil {
		r.Scheme = "https"
	}
	go func() {
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()

	if err := r.waitReady(ctx); err != nil {
		_ = r.Stop()
		tail := r.LogTail(20)
		if strings.Contains(tail, "address already in use") {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return nil, fmt.Errorf("testregistry: registry on %s not ready: %w\nlog tail:\n%s", host, err, tail)
	}
	return r, nil
}

// waitReady polls /v2/ until it answers 200, the process dies, or time runs out.
func (r *Registry) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if r.Reachable() {
			// Another process could own the port and answer for us; make
			// sure ours is still alive before trusting the response.
			select {
			case <-r.exited:
				return fmt.Errorf("process exited: %v", r.waitErr)
			default:
				return nil
			}
		}
		select {
		case <-r.exited:
			return fmt.Errorf("process exited: %v", r.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Reachable reports whether GET /v2/ currently answers 200 (401 when the
// registry requires authentication).
func (r *Registry) Reachable() bool {
	resp, err := r.client.Get(r.Scheme + "://" + r.Host + "/v2/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK || r.authed && resp.StatusCode == http.StatusUnauthorized
}

// Stop sends SIGTERM to the registry's process group, waits up to 5s, then
// sends SIGKILL. It is idempotent and safe to call concurrently.
func (r *Registry) Stop() error {
	r.stopOnce.Do(func() { r.stopErr = r.stop() })
	return r.stopErr
}

func (r *Registry) stop() error {
	defer r.client.CloseIdleConnections()
	select {
	case <-r.exited:
		return nil // died on its own; nothing left to signal
	default:
	}
	if err := signalGroup(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("testregistry: SIGTERM: %w", err)
	}
	select {
	case <-r.exited:
		// The exit status after SIGTERM is irrelevant: we asked it to die.
		return nil
	case <-time.After(stopTimeout):
	}
	if err := signalGroup(r.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("testregistry: SIGKILL: %w", err)
	}
	<-r.exited
	return nil
}

// LogTail returns the last n lines of the registry's log, for error messages.
func (r *Registry) LogTail(n int) string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return fmt.Sprintf("(log unavailable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if n >= 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// New starts a registry for t in t.TempDir() and stops it in t.Cleanup.
// It skips t under -short, and when the registry binary is absent, unless
// RELOCATE_REQUIRE_REGISTRY=1, in which case it fails t.
func New(t testing.TB) *Registry {
	t.Helper()
	return NewWith(t, Options{})
}

// NewWith is New with options.
func NewWith(t testing.TB, o Options) *Registry {
	t.Helper()
	if testing.Short() {
		t.Skip("testregistry: no registry process under -short")
	}
	if _, err := os.Stat(binary); err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("testregistry: %s unavailable and %s=1: %v", binary, requireEnv, err)
		}
		t.Skipf("testregistry: %s unavailable (apt-get install docker-registry): %v", binary, err)
	}
	// TempDir is registered before our Cleanup, so it is removed after Stop.
	r, err := StartWith(t.Context(), t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("testregistry: stop: %v", err)
		}
	})
	return r
}

// freePort asks the kernel for an unused port. Another process may take it
// before the registry binds; Start retries in that case.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testregistry: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cleanEnv drops REGISTRY_* variables, which distribution treats as config
// overrides and which would make runs depend on the caller's environment.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			out = append(out, kv)
		}
	}
	return out
}

// config renders the registry configuration. Upload purging is off so
// the maintenance goroutine never touches storage during a test, and the
// fixed secret keeps upload state valid across restarts on the same dir.
func config(dir, host string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
  secret: relocate-testregistry-secret
`, strconv.Quote(dir), host)
	return b.String()
}

// secure writes the files TLS and authentication need into dir and
// returns the configuration that uses them, and how the readiness probe
// connects (trusting the CA, with a client certificate when one is needed).
func secure(dir string, o Options) (string, *tls.Config, error) {
	var b, auth bytes.Buffer
	if len(o.Users) > 0 {
		users := slices.Sorted(maps.Keys(o.Users))
		var file []byte
		for _, u := range users {
			line, err := Htpasswd(u, o.Users[u])
			if err != nil {
				return "", nil, err
			}
			file = append(file, line...)
		}
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			return "", nil, err
		}
		fmt.Fprintf(&auth, "auth:\n  htpasswd:\n    realm: relocate-test\n    path: %s\n", strconv.Quote(path))
	}
	if o.TLS == nil {
		if len(o.ClientCAs) > 0 {
			return "", nil, errors.New("testregistry: client CAs need TLS")
		}
		return auth.String(), nil, nil
	}
	pair, err := o.TLS.Server()
	if err != nil {
		return "", nil, err
	}
	cert, key, err := pair.Write(filepath.Join(dir, "tls"), "server")
	if err != nil {
		return "", nil, err
	}
	probe := &tls.Config{RootCAs: o.TLS.Pool()}
	// Indented to continue the http section config ends with.
	fmt.Fprintf(&b, "  tls:\n    certificate: %s\n    key: %s\n", strconv.Quote(cert), strconv.Quote(key))
	if len(o.ClientCAs) > 0 {
		b.WriteString("    clientcas:\n")
		for i, ca := range o.ClientCAs {
			path := filepath.Join(dir, "tls", fmt.Sprintf("client-ca-%d.pem", i))
			if err := os.WriteFile(path, ca.PEM, 0o644); err != nil {
				return "", nil, err
			}
			fmt.Fprintf(&b, "      - %s\n", strconv.Quote(path))
		}
		cp, err := o.ClientCAs[0].Client("testregistry-probe")
		if err != nil {
			return "", nil, err
		}
		c, err := cp.TLS()
		if err != nil {
			return "", nil, err
		}
		probe.Certificates = []tls.Certificate{c}
	}
	return b.String() + auth.String(), probe, nil
}
