package relocate

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/relocate-dev/relocate/mirror"
)

// DefaultRetries is how many times a failed registry request is retried
// unless RegistryOptions says otherwise.
const DefaultRetries = mirror.DefaultRetries

// RegistryOptions says how registries are reached: in which scheme, with
// which certificates, credentials and retries. NewClient builds the client
// that Export and Import take from it.
type RegistryOptions struct {
	// PlainHTTP talks HTTP to every registry; PlainHTTPHosts to these only
	// (HOST, any port, or HOST:PORT). Every other host gets HTTPS.
	PlainHTTP      bool
	PlainHTTPHosts []string
	// Retries is how many times a request that failed for a reason that
	// may pass is retried: 0 means DefaultRetries, a negative number never.
	Retries int
	// AllowForeignLayers fetches foreign layers from the URLs they list.
	AllowForeignLayers bool
	UserAgent          string // default "relocate"

	// CAFiles are PEM files of CAs trusted for every host, besides the
	// system's roots.
	CAFiles []string
	// CertsDirs are the certs.d roots searched for HOST[:PORT]/*.crt (CAs)
	// and *.cert/*.key pairs (client certificates); nil means
	// mirror.DefaultCertsDirs (which $RELOCATE_CERTS_DIRS overrides).
	CertsDirs []string
	// InsecureSkipTLSVerify does not verify the TLS certificates of the
	// registries named (only those); each is reported through Warn.
	InsecureSkipTLSVerify bool

	// Username and Password are given to the registries in
	// CredentialHosts (HOST[:PORT]) and to no other; the docker config
	// serves the rest, and these hosts where it is not consulted.
	Username, Password string
	CredentialHosts    []string
	// DockerConfig is the directory of docker's config.json (default
	// $DOCKER_CONFIG, else ~/.docker; podman's auth.json is read when
	// neither has one, as go-containerregistry does).
	DockerConfig string

	// Warn receives warnings for the user (nil: dropped).
	Warn func(msg string)
}

// NewClient builds the registry client o describes. A malformed option is
// an ErrUsage error.
func NewClient(o RegistryOptions) (*mirror.Client, error) {
	return newClient(o, nil)
}

func newClient(o RegistryOptions, keychain authn.Keychain) (*mirror.Client, error) {
	for _, h := range o.PlainHTTPHosts {
		if err := mirror.CheckPlainHTTPHost(h); err != nil {
			return nil, fmt.Errorf("%w: --plain-http-host %q: want HOST or HOST:PORT", ErrUsage, h)
		}
	}
	if (o.Username == "") != (o.Password == "") {
		return nil, fmt.Errorf("%w: a username needs a password and a password a username", ErrUsage)
	}
	if o.Username != "" && len(o.CredentialHosts) == 0 {
		return nil, fmt.Errorf("%w: a username and password need the registry they are for", ErrUsage)
	}
	if keychain == nil {
		keychain = authn.DefaultKeychain
		if o.DockerConfig != "" {
			keychain = mirror.ConfigKeychain(o.DockerConfig)
		}
		if o.Username != "" {
			keychain = authn.NewMultiKeychain(mirror.StaticKeychain(o.Username, o.Password, o.CredentialHosts...), keychain)
		}
	}
	retries := o.Retries
	switch {
	case retries == 0:
		retries = DefaultRetries
	case retries < 0:
		retries = 0
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "relocate"
	}
	opts := []mirror.Option{
		mirror.WithKeychain(keychain),
		mirror.WithPlainHTTP(o.PlainHTTP), mirror.WithPlainHTTPHosts(o.PlainHTTPHosts...),
		mirror.WithRetries(retries), mirror.WithForeignLayers(o.AllowForeignLayers), mirror.WithUserAgent(ua),
		mirror.WithCAFiles(o.CAFiles...), mirror.WithInsecureSkipTLSVerify(o.InsecureSkipTLSVerify),
	}
	if o.CertsDirs != nil {
		opts = append(opts, mirror.WithCertsDirs(o.CertsDirs...))
	}
	if o.Warn != nil {
		opts = append(opts, mirror.WithWarnings(o.Warn))
	}
	c := mirror.New(opts...)
	if err := c.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return c, nil
}

// RegistryHost is the registry a reference, a repository or a --to value
// (HOST[:PORT][/PREFIX]) names, as its credentials are filed: lower case,
// docker.io as index.docker.io.
func RegistryHost(s string) (string, error) {
	host, _, _ := strings.Cut(s, "/")
	if host == "" || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return "", fmt.Errorf("%w: %q names no registry host", ErrUsage, s)
	}
	reg, err := name.NewRegistry(host, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrUsage, s, err)
	}
	return strings.ToLower(reg.RegistryStr()), nil
}

// LoginReport says where a login stored its credentials (never the
// credentials themselves).
type LoginReport struct {
	Registry string `json:"registry"`
	// StoredIn is the config.json written, or the credential helper program
	// that holds the credentials.
	StoredIn string `json:"storedIn"`
}

// Login checks o.Username and o.Password against the registry at host
// (HOST[:PORT]), as docker login does, and only then stores them where
// docker and relocate find them: the docker config's credential helper for
// the host, else config.json in o.DockerConfig (default $DOCKER_CONFIG or
// ~/.docker), mode 0600, other entries kept. Refused credentials are an
// *mirror.AuthError ("authentication failed for HOST") and nothing is
// written.
func Login(ctx context.Context, host string, o RegistryOptions) (*LoginReport, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/")
	if strings.Contains(host, "/") {
		return nil, fmt.Errorf("%w: login takes a registry HOST[:PORT], not %q", ErrUsage, host)
	}
	h, err := RegistryHost(host)
	if err != nil {
		return nil, err
	}
	if o.Username == "" || o.Password == "" {
		return nil, fmt.Errorf("%w: login needs a username and a password", ErrUsage)
	}
	o.CredentialHosts = []string{h}
	// Only the credentials given are tried: the docker config must not
	// stand in for them.
	c, err := newClient(o, mirror.StaticKeychain(o.Username, o.Password, h))
	if err != nil {
		return nil, err
	}
	if err := c.CheckCredentials(ctx, host); err != nil {
		return nil, err
	}
	dir := o.DockerConfig
	if dir == "" {
		dir = mirror.DockerConfigDir()
	}
	where, err := mirror.SaveCredentials(dir, host, o.Username, o.Password)
	if err != nil {
		return nil, fmt.Errorf("storing the credentials for %s: %w", host, err)
	}
	return &LoginReport{Registry: h, StoredIn: where}, nil
}
