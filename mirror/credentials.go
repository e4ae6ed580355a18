package mirror

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/relocate-dev/relocate/internal/atomicfile"
)

// DockerConfigDir is where docker keeps config.json: $DOCKER_CONFIG, else
// ~/.docker.
func DockerConfigDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".docker"
	}
	return filepath.Join(home, ".docker")
}

// ConfigKeychain reads credentials from the docker config.json in dir and
// the credential helpers it names, as authn.DefaultKeychain does for
// $DOCKER_CONFIG.
func ConfigKeychain(dir string) authn.Keychain { return configKeychain{dir: dir} }

type configKeychain struct{ dir string }

func (k configKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cf, err := config.Load(k.dir)
	if err != nil {
		return nil, err
	}
	var empty types.AuthConfig
	for _, key := range []string{target.String(), target.RegistryStr()} {
		cfg, err := cf.GetAuthConfig(authKey(key))
		if err != nil {
			return nil, err
		}
		cfg.ServerAddress = ""
		if cfg != empty {
			return authn.FromConfig(authn.AuthConfig{Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth,
				IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken}), nil
		}
	}
	return authn.Anonymous, nil
}

// authKey is the key docker files a registry's credentials under: the
// host, except Docker Hub's historical URL.
func authKey(host string) string {
	if host == name.DefaultRegistry || host == "docker.io" {
		return authn.DefaultAuthKey
	}
	return host
}

// SaveCredentials stores username and password for registry host as docker
// login does: in the credential helper config.json names for it (credHelpers,
// else credsStore), else in config.json's "auths" as base64 "user:password".
// config.json is rewritten atomically with mode 0600, keeping every other
// entry; one that does not parse is left alone and reported. It returns the
// file written or the helper used.
func SaveCredentials(dir, host, username, password string) (where string, err error) {
	key := authKey(registryKey(host))
	path := filepath.Join(dir, "config.json")
	// Write through a symlink (dotfile managers), as docker does.
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	doc := map[string]json.RawMessage{}
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", err
	case len(bytes.TrimSpace(raw)) > 0:
		if err := json.Unmarshal(raw, &doc); err != nil {
			return "", fmt.Errorf("%s does not parse, so relocate leaves it alone: %w", path, err)
		}
	}
	if helper := credentialHelper(doc, key); helper != "" {
		prog := "docker-credential-" + helper
		c := &credentials.Credentials{ServerURL: key, Username: username, Secret: password}
		if err := client.Store(client.NewShellProgramFunc(prog), c); err != nil {
			return "", fmt.Errorf("storing credentials for %s with %s: %w", host, prog, err)
		}
		return prog, nil
	}
	auths := map[string]json.RawMessage{}
	if a, ok := doc["auths"]; ok {
		if err := json.Unmarshal(a, &auths); err != nil {
			return "", fmt.Errorf("%s: \"auths\" does not parse, so relocate leaves it alone: %w", path, err)
		}
	}
	entry, _ := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(username + ":" + password))})
	auths[key] = entry
	if doc["auths"], err = json.Marshal(auths); err != nil {
		return "", err
	}
	out, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(append(out, '\n')); err != nil {
		f.Abort()
		return "", err
	}
	if err := f.Commit(); err != nil {
		return "", err
	}
	return path, nil
}

// credentialHelper is the helper config.json names for key, if any.
func credentialHelper(doc map[string]json.RawMessage, key string) string {
	var helpers map[string]string
	if json.Unmarshal(doc["credHelpers"], &helpers) == nil && helpers[key] != "" {
		return helpers[key]
	}
	var store string
	json.Unmarshal(doc["credsStore"], &store)
	return store
}
