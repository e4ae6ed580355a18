package relocate

import (
	"errors"
	"testing"
)

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"registry.example.com/team/app:1": "registry.example.com",
		"127.0.0.1:5000":                  "127.0.0.1:5000",
		"127.0.0.1:5000/mirror":           "127.0.0.1:5000",
		"docker.io/library/alpine:3.20":   "index.docker.io",
		"localhost/app:1":                 "localhost",
		"Registry.Example.com/app:1":      "registry.example.com",
	} {
		if got, err := RegistryHost(in); err != nil || got != want {
			t.Errorf("RegistryHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"alpine:3.20", "", "team/app"} {
		if _, err := RegistryHost(in); !errors.Is(err, ErrUsage) {
			t.Errorf("RegistryHost(%q): %v, want a usage error", in, err)
		}
	}
}

// TestNewClientUsage: options that cannot work are usage errors before any
// request.
func TestNewClientUsage(t *testing.T) {
	for name, o := range map[string]RegistryOptions{
		"password without username":  {Password: "pw", CredentialHosts: []string{"r.example"}},
		"username without password":  {Username: "u", CredentialHosts: []string{"r.example"}},
		"credentials for no host":    {Username: "u", Password: "pw"},
		"plain HTTP host with a URL": {PlainHTTPHosts: []string{"http://r.example"}},
		"CA file absent":             {CAFiles: []string{t.TempDir() + "/absent.pem"}},
	} {
		if _, err := NewClient(o); !errors.Is(err, ErrUsage) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
	if _, err := NewClient(RegistryOptions{Username: "u", Password: "pw", CredentialHosts: []string{"r.example"}}); err != nil {
		t.Errorf("credentials for one host: %v", err)
	}
}
