package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/relocate-dev/relocate"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// The flags that say how registries are reached at a site: TLS with a
// private CA or a client certificate, and credentials.

func caFileFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "ca-file", Usage: "trust the CA certificates in PEM `FILE` for every registry, besides the system's roots: a site's private CA (repeatable)"}
}

func certsDirFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "certs-dir", Usage: "look for each registry's certificates in `DIR`/HOST[:PORT]/, the docker and containers certs.d convention: *.crt are CAs, client.cert with client.key (any NAME.cert with NAME.key) a client certificate for mutual TLS (repeatable, first match wins; replaces the defaults ~/.config/containers/certs.d, /etc/containers/certs.d, /etc/docker/certs.d, as does $RELOCATE_CERTS_DIRS, a colon-separated list)"}
}

func insecureFlag() cli.Flag {
	return &cli.BoolFlag{Name: "insecure-skip-tls-verify", Usage: "do not verify the TLS certificates of the registries the command names (token servers and other hosts still are); warns naming each. Anyone on the network path can then read and change the traffic, credentials included"}
}

func usernameFlag(what string) cli.Flag {
	return &cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "log in as `USER` to " + what + ", with the password read from stdin (--password-stdin); other registries get credentials from the docker config"}
}

func passwordStdinFlag() cli.Flag {
	return &cli.BoolFlag{Name: "password-stdin", Usage: "read the password for --username from stdin (one trailing newline dropped); never printed. The archive cannot then come from stdin"}
}

func dockerConfigFlag() cli.Flag {
	return &cli.StringFlag{Name: "docker-config", Usage: "the docker config `DIR` whose config.json (and the credential helpers it names) holds credentials (default $DOCKER_CONFIG, else ~/.docker)"}
}

// tlsFlags are the TLS flags of every command that reaches a registry.
func tlsFlags() []cli.Flag {
	return []cli.Flag{caFileFlag(), certsDirFlag(), insecureFlag()}
}

// registryFlags are tlsFlags and the credential flags, for export and import.
func registryFlags(usernameFor string) []cli.Flag {
	return append(tlsFlags(), usernameFlag(usernameFor), passwordStdinFlag(), dockerConfigFlag())
}

// registryOptions reads the network and registry flags. hosts are the
// registries the command names, which --username applies to; stdinBusy
// says why stdin cannot hold a password ("" if it can).
func (e *env) registryOptions(c *cli.Context, hosts []string, stdinBusy string) (relocate.RegistryOptions, error) {
	o, err := e.connectOptions(c)
	if err != nil {
		return o, err
	}
	user, fromStdin := c.String("username"), c.Bool("password-stdin")
	switch {
	case fromStdin && user == "":
		return o, usagef("--password-stdin needs --username")
	case user != "" && !fromStdin:
		return o, usagef("--username needs --password-stdin: relocate reads a password from stdin, never from the command line (or store credentials with relocate login)")
	case user == "":
		return o, nil
	case stdinBusy != "":
		return o, usagef("--password-stdin reads stdin, and so does %s: give the archive as a file, or store the credentials first with relocate login", stdinBusy)
	case len(hosts) == 0:
		return o, usagef("--username: the command names no registry to log in to")
	case len(hosts) > 1:
		// One password sent to several registries would leak it to all but one.
		return o, usagef("--username applies to one registry, and the references name %d (%s): store credentials for each with relocate login HOST", len(hosts), strings.Join(hosts, ", "))
	}
	pw, err := e.readPassword()
	if err != nil {
		return o, err
	}
	o.Username, o.Password, o.CredentialHosts = user, pw, hosts
	return o, nil
}

// connectOptions reads the flags that say how to reach registries, all but
// the credentials.
func (e *env) connectOptions(c *cli.Context) (relocate.RegistryOptions, error) {
	o := relocate.RegistryOptions{
		PlainHTTP: c.Bool("plain-http"), PlainHTTPHosts: c.StringSlice("plain-http-host"),
		AllowForeignLayers: c.Bool("allow-foreign-layers"), UserAgent: "relocate",
		CAFiles: c.StringSlice("ca-file"), InsecureSkipTLSVerify: c.Bool("insecure-skip-tls-verify"),
		DockerConfig: c.String("docker-config"),
		Warn:         func(msg string) { fmt.Fprintf(e.stderr, "warning: %s\n", msg) },
	}
	switch n := c.Int("retries"); {
	case n < 0:
		return o, usagef("--retries %d: want 0 or more", n)
	case n == 0:
		o.Retries = -1 // never
	default:
		o.Retries = n
	}
	if c.IsSet("certs-dir") {
		o.CertsDirs = c.StringSlice("certs-dir")
	}
	return o, nil
}

// readPassword reads --password-stdin's password, as docker login does.
func (e *env) readPassword() (string, error) {
	b, err := io.ReadAll(io.LimitReader(e.stdin, 64<<10))
	if err != nil {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", usagef("--password-stdin: stdin held no password")
	}
	e.hide(pw)
	return pw, nil
}

// hide remembers a password so that no error message shows it, even one a
// hostile registry wrote, in clear or as docker's base64 user:password.
func (e *env) hide(pw string) {
	e.secrets = append(e.secrets, pw)
}

// redact removes every hidden secret from err's message.
func (e *env) redact(err error) error {
	msg := err.Error()
	clean := msg
	for _, s := range e.secrets {
		clean = strings.ReplaceAll(clean, s, "[redacted]")
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding} {
			if b := enc.EncodeToString([]byte(s)); len(b) > 3 {
				clean = strings.ReplaceAll(clean, b, "[redacted]")
			}
		}
	}
	if clean == msg {
		return err
	}
	return redacted{err: err, msg: clean}
}

type redacted struct {
	err error
	msg string
}

func (r redacted) Error() string { return r.msg }
func (r redacted) Unwrap() error { return r.err }

// exportRegistries are the registries an export names: those of its
// references, and of the bundles it names by reference.
func exportRegistries(refs, bundles []string) []string {
	all := append([]string(nil), refs...)
	for _, b := range bundles {
		if _, err := os.Stat(b); err != nil && !strings.Contains(b, "=") {
			all = append(all, b)
		}
	}
	seen := map[string]bool{}
	var hosts []string
	for _, r := range all {
		if h, err := relocate.RegistryHost(r); err == nil && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	return hosts
}

// importRegistries is the registry of --to.
func importRegistries(to string) []string {
	if h, err := relocate.RegistryHost(to); err == nil {
		return []string{h}
	}
	return nil
}

func loginCmd(e *env) *cli.Command {
	return withUsage(&cli.Command{
		Name:      "login",
		Usage:     "check credentials against a registry and store them in the docker config",
		ArgsUsage: "HOST[:PORT] [--username USER --password-stdin]",
		Description: `Checks the username and password against the registry, as docker login does,
and only then stores them where docker, crane, oras and relocate find them:
in the credential helper the docker config names for the registry (credHelpers,
credsStore), else in config.json ($DOCKER_CONFIG or ~/.docker, or
--docker-config DIR) as base64 user:password, mode 0600, every other entry
kept. Without --password-stdin it prompts on the terminal. Refused credentials
are "authentication failed for HOST", exit 1, and nothing is written.`,
		Flags: append(tlsFlags(),
			usernameFlag("HOST"), passwordStdinFlag(), dockerConfigFlag(),
			plainHTTPFlag(), plainHTTPHostFlag(), jsonFlag(), quietFlag()),
		Action: func(c *cli.Context) error {
			host, err := oneArg(c, "HOST[:PORT]")
			if err != nil {
				return err
			}
			user, fromStdin := c.String("username"), c.Bool("password-stdin")
			var pw string
			switch {
			case fromStdin && user == "":
				return usagef("--password-stdin needs --username")
			case fromStdin:
				if pw, err = e.readPassword(); err != nil {
					return err
				}
			default:
				if user, pw, err = e.prompt(user); err != nil {
					return err
				}
			}
			o, err := e.connectOptions(c)
			if err != nil {
				return err
			}
			o.Username, o.Password = user, pw
			rep, err := relocate.Login(c.Context, host, o)
			if err != nil {
				return err
			}
			e.say(c, "login succeeded: credentials for %s stored in %s\n", rep.Registry, rep.StoredIn)
			return e.report(c, rep)
		},
	})
}

// prompt asks for what --username and --password-stdin did not give, on a
// terminal only: a script must say where the password comes from.
func (e *env) prompt(user string) (string, string, error) {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", "", usagef("login needs --username USER with --password-stdin when stdin is not a terminal")
	}
	if user == "" {
		fmt.Fprint(e.stderr, "Username: ")
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", "", err
		}
		if user = strings.TrimSpace(line); user == "" {
			return "", "", usagef("login needs a username")
		}
	}
	fmt.Fprint(e.stderr, "Password: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", "", err
	}
	if len(b) == 0 {
		return "", "", usagef("login needs a password")
	}
	e.hide(string(b))
	return user, string(b), nil
}
