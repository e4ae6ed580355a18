// Command relocate carries signed software across an air gap: export images
// into one OCI-layout archive, verify it on removable media, import it into a
// disconnected registry with every digest unchanged.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/relocate-dev/relocate"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// Exit codes: scripts at an air gap must tell bad media from a down registry.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitRefused  = 3
	usageMessage = "run 'relocate help' for usage"
)

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command needs from its surroundings.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// reported is set once a --json document went to stdout: scripts get
	// exactly one, whatever the outcome.
	reported bool
	// secrets are passwords read for this run, kept out of every message.
	secrets []string
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	app := newApp(e)
	err := app.RunContext(ctx, reorder(app, args))
	if err == nil {
		return exitOK
	}
	err = e.redact(err)
	fmt.Fprintln(stderr, "relocate: "+err.Error())
	code := exitCode(err)
	if code == exitUsage {
		fmt.Fprintln(stderr, usageMessage)
	}
	if wantsJSON(args) && !e.reported {
		writeErrorJSON(stdout, code, err)
	}
	return code
}

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue), errors.Is(err, relocate.ErrNameConflict), errors.Is(err, relocate.ErrUsage):
		return exitUsage
	case relocate.IsRefused(err):
		return exitRefused
	}
	return exitFailure
}

// wantsJSON finds --json among the arguments, even when they did not parse.
func wantsJSON(args []string) bool {
	for _, a := range args[1:] {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "-json" || a == "--json=true" || a == "-json=true" {
			return true
		}
	}
	return false
}

// jsonError is the --json document of a failure.
type jsonError struct {
	Error struct {
		// Kind is "usage" (exit 2), "operational" (exit 1) or "refused" (exit 3).
		Kind     string             `json:"kind"`
		Code     int                `json:"exitCode"`
		Message  string             `json:"message"`
		Registry string             `json:"registry,omitempty"`
		Problems []relocate.Problem `json:"problems,omitempty"`
	} `json:"error"`
}

func writeErrorJSON(w io.Writer, code int, err error) {
	var doc jsonError
	doc.Error.Code, doc.Error.Message = code, err.Error()
	doc.Error.Kind = map[int]string{exitUsage: "usage", exitRefused: "refused", exitFailure: "operational"}[code]
	doc.Error.Problems = relocate.Problems(err)
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			doc.Error.Registry = u.Host
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(doc)
}

// Flags shared by several commands; each command gets its own instances.
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print one machine-readable report on stdout (human output stays on stderr)"}
}

func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bars, no summary; errors only"}
}

func plainHTTPFlag() cli.Flag {
	return &cli.BoolFlag{Name: "plain-http", Usage: "talk plain HTTP, not HTTPS, to every registry (test registries); credentials then travel in clear text, and only to the registries named"}
}

func plainHTTPHostFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "plain-http-host", Usage: "talk plain HTTP to this registry only: `HOST[:PORT]` (repeatable; without a port, any port of HOST). Every other host gets HTTPS, loopback and private addresses included"}
}

func retriesFlag() cli.Flag {
	return &cli.IntFlag{Name: "retries", Value: relocate.DefaultRetries, Usage: "retry a registry request that failed for a reason that may pass (5xx, 429 after its Retry-After, a reset connection, a body cut short) up to `N` times, waiting longer each time; content that does not match its digest is never retried"}
}

func jobsFlag() cli.Flag {
	return &cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: relocate.DefaultJobs(), Usage: "parallel transfers"}
}

func warnFlag() cli.Flag {
	return &cli.DurationFlag{Name: "warn-expiry", Value: 72 * time.Hour, Usage: "warn when TUF metadata expires within this long (media may travel for days)"}
}

func stateFlag() cli.Flag {
	return &cli.StringFlag{Name: "state", Usage: "the site's trusted TUF state `DIR` (default " + relocate.DefaultStateDir() + ")"}
}

func trustFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "trust", Usage: "pin the root of TUF repository (or Notary GUN) NAME, obtained out of band: `NAME=root.json` (repeatable; needed the first time only)"}
}

func trustCAFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "trust-ca", Usage: "pin a Notary GUN by the CA its root certificates must chain to: `GUN=ca.pem` (repeatable)"}
}

func inspectFlag() cli.Flag {
	return &cli.BoolFlag{Name: "run-inspections", Usage: "run in-toto inspections (commands a layout names) in a temporary directory; by default they are reported as not run"}
}

func policyFlag() cli.Flag {
	return &cli.StringFlag{Name: "policy", Usage: "the site's policy `FILE` (TAP 4 mapping, roles that must each vouch, expiry grace, signature rules; see docs/trust.md)"}
}

func requireSignaturesFlag() cli.Flag {
	return &cli.BoolFlag{Name: "require-signatures", Usage: "every image must have a valid signature under the policy's signature rules (refused, exit 3, otherwise); needs a --policy with signature rules"}
}

func sigstoreRootFlag() cli.Flag {
	return &cli.StringFlag{Name: "sigstore-trusted-root", Usage: "Sigstore trusted_root.json `FILE` for keyless signature requirements, instead of the TUF target the policy names (sigstoreTrustedRoot)"}
}

// trustOptions reads the site's trust flags.
func trustOptions(c *cli.Context) (relocate.TrustOptions, error) {
	o := relocate.TrustOptions{StateDir: c.String("state"), WarnExpiry: c.Duration("warn-expiry"), Pins: map[string][]byte{}, RunInspections: c.Bool("run-inspections")}
	pairs, err := nameValues(c.StringSlice("trust"), "--trust")
	if err != nil {
		return o, err
	}
	for name, file := range pairs {
		b, err := os.ReadFile(file)
		if err != nil {
			return o, fmt.Errorf("--trust %s: %w", name, err)
		}
		o.Pins[name] = b
	}
	cas, err := nameValues(c.StringSlice("trust-ca"), "--trust-ca")
	if err != nil {
		return o, err
	}
	o.PinCAs = map[string][]byte{}
	for gun, file := range cas {
		b, err := os.ReadFile(file)
		if err != nil {
			return o, fmt.Errorf("--trust-ca %s: %w", gun, err)
		}
		o.PinCAs[gun] = b
	}
	if f := c.String("policy"); f != "" {
		o.PolicyFile = f
		if o.Policy, err = relocate.LoadPolicy(f); err != nil {
			return o, usagef("--policy %s: %v", f, err)
		}
	}
	o.RequireSignatures = c.Bool("require-signatures")
	if o.RequireSignatures && !o.Policy.HasSignatureRules() {
		return o, usagef("--require-signatures needs a --policy with signature rules: it requires a valid signature under the site's policy (see docs/trust.md)")
	}
	if f := c.String("sigstore-trusted-root"); f != "" {
		if o.SigstoreTrustedRoot, err = os.ReadFile(f); err != nil {
			return o, usagef("--sigstore-trusted-root: %v", err)
		}
		o.SigstoreTrustedRootFile = f
	}
	if list := c.StringSlice("publish-tuf"); len(list) > 0 {
		if o.PublishTUF, err = nameValues(list, "--publish-tuf"); err != nil {
			return o, err
		}
	}
	return o, nil
}

// saySignatures prints the signature verdict of each image a rule covered.
func (e *env) saySignatures(c *cli.Context, sr *relocate.SignatureResult) {
	if sr == nil {
		return
	}
	if sr.TrustedRoot != "" {
		e.say(c, "sigstore trusted root: %s\n", sr.TrustedRoot)
	}
	for _, im := range sr.Images {
		switch im.Verdict {
		case "ok":
			var by []string
			for _, r := range im.Satisfied {
				for _, ev := range r.Signatures {
					by = append(by, fmt.Sprintf("%s (%s, %s)", r.Requirement, ev.Format, ev.Signer))
				}
			}
			e.say(c, "signed: %s: %s\n", im.Ref, strings.Join(by, "; "))
		case "refused":
			e.say(c, "signature refused: %s: %s\n", im.Ref, im.Problem)
		}
	}
}

// nameValues parses repeated NAME=VALUE flags.
func nameValues(list []string, flag string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, usagef("%s %q: want NAME=VALUE", flag, kv)
		}
		if _, dup := out[k]; dup {
			return nil, usagef("%s %s given twice", flag, k)
		}
		out[k] = v
	}
	return out, nil
}

// sayTrust prints what TUF said about the archive.
func (e *env) sayTrust(c *cli.Context, tr *relocate.TrustReport) {
	if tr == nil || tr.TrustResult == nil {
		return
	}
	for _, w := range tr.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	for _, r := range tr.Repositories {
		var parts []string
		for _, ro := range r.Roles {
			parts = append(parts, fmt.Sprintf("%s v%d (expires %s)", ro.Role, ro.Version, ro.Expires.Format("2006-01-02 15:04Z07:00")))
		}
		pinned := ""
		if r.Pinned {
			pinned = ", root pinned now"
		}
		kind := "tuf "
		if strings.HasPrefix(r.Name, "notary:") {
			kind = ""
		}
		e.say(c, "%s%s%s: %s\n", kind, r.Name, pinned, strings.Join(parts, ", "))
	}
	for _, im := range tr.Images {
		var by []string
		for _, v := range im.VouchedBy {
			by = append(by, fmt.Sprintf("%s/%s v%d", v.Repository, v.Role, v.Version))
		}
		switch {
		case len(by) > 0:
			e.say(c, "vouched: %s by %s\n", im.Ref, strings.Join(by, ", "))
		case im.Unvouched:
			e.say(c, "unvouched: %s (allowed by the site's policy)\n", im.Ref)
		}
	}
	if tr.Expires != nil {
		e.say(c, "earliest TUF expiry: %s\n", tr.Expires.Format(time.RFC3339))
	}
}

func newApp(e *env) *cli.App {
	return &cli.App{
		Name:            "relocate",
		Usage:           "carry signed software across an air gap without losing its trust",
		Version:         version(),
		Writer:          e.stdout, // help and --version
		ErrWriter:       e.stderr,
		HideHelpCommand: false,
		// Repeatable flags are repeated, never comma-split: a path may hold a comma.
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*cli.Context, error) {}, // run maps errors to exit codes
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err.Error()}
		},
		Description: `Exit codes: 0 success; 1 operational failure (network, disk, registry);
2 usage; 3 verification refused (the archive is bad or hostile).

Credentials come from the docker config (~/.docker/config.json) and its
credential helpers ("relocate login HOST" stores them there), or from
--username with --password-stdin. A private CA: --ca-file, or the certs.d
directories of docker and podman (/etc/docker/certs.d/HOST[:PORT]/, with
client.cert and client.key for mutual TLS). Registries are reached over HTTPS, whatever their
address (loopback and private ones included), unless --plain-http (every
registry) or --plain-http-host HOST[:PORT] (that one) says otherwise;
credentials never go over plain HTTP to a host not named. Requests that fail
for a reason that may pass are retried (--retries). Flags may come before or
after the arguments.`,
		Commands: []*cli.Command{exportCmd(e), verifyCmd(e), importCmd(e), inspectCmd(e), loginCmd(e), versionCmd(e)},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q (commands: export, verify, import, inspect, login, version, help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
}

func withUsage(c *cli.Command) *cli.Command {
	c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err.Error()} }
	return c
}

// progress returns bars on a terminal, else nothing.
func (e *env) progress(c *cli.Context) *bars {
	if c.Bool("quiet") {
		return nil
	}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return newBars(f)
	}
	return nil
}

func (e *env) say(c *cli.Context, format string, args ...any) {
	if !c.Bool("quiet") {
		fmt.Fprintf(e.stderr, format, args...)
	}
}

// report prints v as JSON on stdout when --json is set.
func (e *env) report(c *cli.Context, v any) error {
	if !c.Bool("json") {
		return nil
	}
	e.reported = true
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func exportCmd(e *env) *cli.Command {
	return withUsage(&cli.Command{
		Name:      "export",
		Usage:     "pack images into one OCI-layout archive",
		ArgsUsage: "-o FILE [REF...]",
		Description: `Pulls every reference (tag or digest; single images and multi-platform
indexes with all their platforms) and writes one tar holding an OCI image
layout. Every blob is stored once and checked against its digest as it is
fetched; manifests keep their exact bytes, so digests never change.
The file appears at its path only when complete. FILE ending in .zst or .gz
is compressed; "-o -" writes to stdout. --volume-size cuts the archive into
volumes FILE.001, FILE.002, … with an index FILE-volumes.json.

--platform carries only the platforms asked for: each chosen platform
manifest travels alone under its own digest (never a rewritten or sparse
index: registries refuse an index whose other children are absent).

Before the first layer is fetched, the temporary files of killed exports in
the output's directory are removed, and the archive (its size known from the
manifests, plus 1% and 16 MiB) must fit in the free space there (exit 1
otherwise, naming both; what an interrupted export left for the next run
counts as free).

An export to one file that fails or is killed keeps what it completed in
.FILE.relocate-partial (and its journal .FILE.relocate-resume); running the
same export again checks that against its digests and fetches only the
rest: the archive is the same, byte for byte. --no-resume starts over.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "archive to write (\"-\" for stdout)"},
			&cli.StringFlag{Name: "images-file", Usage: "read references from `FILE`, one a line (# comments allowed)"},
			&cli.StringFlag{Name: "compress", Usage: "zstd, gzip or none (default: from the file extension)"},
			&cli.BoolFlag{Name: "no-referrers", Usage: "leave out signatures, SBOMs, attestations and other attached artifacts"},
			&cli.StringSliceFlag{Name: "referrers-filter", Usage: "keep only OCI referrers of this `ARTIFACT_TYPE` (repeatable; cosign tags are always kept)"},
			&cli.BoolFlag{Name: "skip-broken-referrers", Usage: "export without attached artifacts that the registry lists but says are absent (404) or serves invalid (wrong digest, unparsable), each reported, instead of failing; other failures still fail the export"},
			&cli.BoolFlag{Name: "allow-foreign-layers", Usage: "fetch a foreign (non-distributable) layer the registry does not hold from the https URLs its manifest lists (no credentials, no redirect to another host); without it such an image is refused"},
			&cli.StringSliceFlag{Name: "bundle", Usage: "carry a CNAB bundle: a reference to one stored the cnab-to-oci way, or `FILE[=REF]` for a bundle.json (REF defaults to localhost/NAME:VERSION) (repeatable)"},
			&cli.StringSliceFlag{Name: "tuf", Usage: "carry the metadata chain of TUF repository `NAME=URL` (repeatable)"},
			&cli.StringSliceFlag{Name: "tuf-root", Usage: "verify repository NAME from this trusted root before packing it: `NAME=FILE`"},
			&cli.StringSliceFlag{Name: "tuf-targets", Usage: "carry the target files of repository NAME whose names match `NAME=GLOB` (* matches any run, / included), e.g. sigstore=trusted_root.json (repeatable)"},
			&cli.StringSliceFlag{Name: "notary", Usage: "carry the Notary v1 (Docker Content Trust) trust data of `GUN=URL`, e.g. registry.example.com/team/app=https://notary.example.com (repeatable)"},
			&cli.StringFlag{Name: "notary-ca", Usage: "PEM `FILE` of the CA that notary servers' TLS certificates chain to"},
			&cli.StringFlag{Name: "since", Usage: "make a delta: leave out every layer that the earlier archive `OLD` (or its relocate-toc.json) carried or expected, listing each as expected at the site; import it where OLD was imported"},
			&cli.BoolFlag{Name: "no-resume", Usage: "start over: remove what an interrupted export to FILE left, and leave nothing behind if this one fails"},
			volumeSizeFlag(), platformFlag(),
			warnFlag(), jobsFlag(), retriesFlag(), plainHTTPFlag(), plainHTTPHostFlag(), jsonFlag(), quietFlag(),
		}, registryFlags("the registry the references name (only one)")...),
		Action: func(c *cli.Context) error {
			out := c.String("output")
			if out == "" {
				return usagef("export needs -o FILE")
			}
			refs := c.Args().Slice()
			if f := c.String("images-file"); f != "" {
				more, err := readLines(f)
				if err != nil {
					return err
				}
				refs = append(refs, more...)
			}
			if len(refs) == 0 && len(c.StringSlice("bundle")) == 0 {
				return usagef("export needs at least one image reference (or --images-file, or --bundle)")
			}
			var comp relocate.Compression
			if s := c.String("compress"); s != "" {
				var err error
				if comp, err = relocate.ParseCompression(s); err != nil {
					return usagef("--compress %q: want zstd, gzip or none", s)
				}
			}
			if out == "-" && c.Bool("json") {
				return usagef("-o - writes the archive to stdout, so --json cannot")
			}
			tufs, err := tufSources(c)
			if err != nil {
				return err
			}
			notaries, err := notarySources(c)
			if err != nil {
				return err
			}
			volumeSize, err := volumeSize(c)
			if err != nil {
				return err
			}
			ro, err := e.registryOptions(c, exportRegistries(refs, c.StringSlice("bundle")), "")
			if err != nil {
				return err
			}
			cl, err := relocate.NewClient(ro)
			if err != nil {
				return err
			}
			b := e.progress(c)
			rep, err := relocate.Export(c.Context, relocate.ExportOptions{
				Refs: refs, Bundles: c.StringSlice("bundle"), Output: out, Stdout: e.stdout, Compression: comp,
				NoReferrers: c.Bool("no-referrers"), ArtifactTypes: c.StringSlice("referrers-filter"), SkipBrokenReferrers: c.Bool("skip-broken-referrers"),
				TUF: tufs, Notary: notaries, WarnExpiry: c.Duration("warn-expiry"), Platforms: c.StringSlice("platform"),
				Jobs: c.Int("jobs"), Client: cl, Progress: progressOf(b), VolumeSize: volumeSize, FreeSpace: freeSpace,
				NoResume: c.Bool("no-resume"), Since: c.String("since"),
			})
			b.wait()
			if err != nil {
				return err
			}
			if r := rep.Resumed; r != nil {
				e.say(c, "resumed an interrupted export: reused %d layer(s), %s, each checked against its digest\n", r.Entries, human(r.Bytes))
			}
			for _, w := range rep.Warnings {
				fmt.Fprintf(e.stderr, "warning: %s\n", w)
			}
			e.sayExport(c, rep)
			for _, r := range rep.TUF {
				state := "NOT verified (no --tuf-root given)"
				if r.Verified {
					state = "verified from the given root"
				}
				e.say(c, "tuf %s: %d metadata roles from %s, %s\n", r.Name, len(r.Roles), r.URL, state)
				if len(r.Targets) > 0 {
					e.say(c, "tuf %s: carrying target file(s) %s\n", r.Name, strings.Join(r.Targets, ", "))
				}
			}
			for _, r := range rep.Notary {
				e.say(c, "notary %s: %d roles from %s (verified at the site, from its pinned root)\n", r.Name, len(r.Roles), r.URL)
			}
			if rep.Expires != nil {
				e.say(c, "earliest TUF expiry: %s\n", rep.Expires.Format(time.RFC3339))
			}
			if d := rep.Delta; d != nil {
				e.say(c, "delta: left out %d layer(s), %s, expected at the site (carried by %s)\n", len(d.Expected), human(d.ExpectedBytes), baseNames(d))
			}
			e.say(c, "exported %d image(s) with %d attached artifact(s), %d blobs, %s to %s\n", len(rep.Images), rep.Attachments, rep.Blobs, human(rep.Bytes), out)
			e.sayVolumesWritten(c, rep.Volumes)
			return e.report(c, rep)
		},
	})
}

func verifyCmd(e *env) *cli.Command {
	return withUsage(&cli.Command{
		Name:      "verify",
		Usage:     "check an archive: every digest, size and reference",
		ArgsUsage: "ARCHIVE",
		Description: `Reads the archive once, streaming ("-" for stdin), and checks every blob's
digest and size, that every manifest's references are present, and that
index.json and the table of contents agree, and verifies trust metadata as
import does (reading the site's state, never writing it). Exits 0 with a
summary, or names every problem and exits 3. A volume set is read from its
first volume or its index, every volume checked against the index; any
other volume (or the first, with --single-volume) is checked alone.`,
		Flags: []cli.Flag{
			requireSignaturesFlag(), sigstoreRootFlag(), volumeIndexFlag(), volumeDigestFlag(),
			&cli.BoolFlag{Name: "single-volume", Usage: "check only the volume given, even the first, against the set's index (a volume other than the first is always checked alone)"},
			&cli.StringFlag{Name: "at", Usage: "judge expiry as of `TIME` (RFC 3339, e.g. 2026-08-22T00:00:00Z) instead of the local clock: for forensics and for metadata that has expired since; verify only, the report says the time used"},
			stateFlag(), trustFlag(), trustCAFlag(), policyFlag(), inspectFlag(), warnFlag(), jobsFlag(), jsonFlag(), quietFlag(),
		},
		Action: func(c *cli.Context) error {
			path, err := oneArg(c, "ARCHIVE")
			if err != nil {
				return err
			}
			to, err := trustOptions(c)
			if err != nil {
				return err
			}
			if at := c.String("at"); at != "" {
				if to.At, err = time.Parse(time.RFC3339, at); err != nil {
					return usagef("--at %q: want an RFC 3339 time such as 2026-08-22T00:00:00Z", at)
				}
				fmt.Fprintf(e.stderr, "warning: checking trust as of %s (--at), not at the local clock\n", to.At.UTC().Format(time.RFC3339))
			}
			b := e.progress(c)
			rep, err := relocate.Verify(c.Context, relocate.VerifyOptions{Archive: path, Stdin: e.stdin, Jobs: c.Int("jobs"), Trust: to, Progress: progressOf(b),
				Volumes: volumeOptions(c)})
			b.wait()
			if rep != nil && e.sayVolumes(c, path, rep) { // one volume alone: nothing more to say
				if jerr := e.report(c, rep); jerr != nil {
					return jerr
				}
				return err
			}
			if rep != nil {
				e.sayTrust(c, rep.Trust)
				e.saySignatures(c, rep.Signatures)
				if rep.Verdict == "ok" {
					if n := len(rep.Unsigned); n > 0 {
						e.say(c, "note: %d of %d image(s) have no signature attached (%s)\n", n, len(rep.Images), listSome(rep.Unsigned, 3))
					}
					e.say(c, "%s: ok: %d image(s), %d platform(s), %d attached artifact(s), %d blobs, %s\n", path, len(rep.Images), rep.Platforms, rep.Attachments, rep.Blobs, human(rep.Bytes))
				}
				e.sayExpected(c, rep.Delta, "expects")
				for _, b := range rep.Bundles {
					e.say(c, "bundle %s: CNAB Security level %s\n", b.Ref, b.Level)
					if b.InTotoNote != "" {
						e.say(c, "bundle %s: in-toto %s\n", b.Ref, b.InTotoNote)
					}
				}
				if jerr := e.report(c, rep); jerr != nil {
					return jerr
				}
			}
			return err
		},
	})
}

func importCmd(e *env) *cli.Command {
	return withUsage(&cli.Command{
		Name:      "import",
		Usage:     "verify an archive and republish it into a registry",
		ArgsUsage: "ARCHIVE --to HOST[:PORT][/PREFIX] [--map FILE] [--include PATTERN]... [--exclude PATTERN]...",
		Description: `Checks the archive's metadata before pushing anything, then pushes blobs
(skipping what exists, mounting across repositories, checking every digest as
it streams), manifests by digest, and tags last, only for images whose every
blob was verified. HOST1/path/name:tag lands on HOST/PREFIX/path/name:tag with
the same digest, unless --map places it elsewhere; --include and --exclude
choose which images land (two that would land on one name are exit 2).
Rerunning an import finishes an interrupted one; re-importing
is fast, as everything already present is skipped.

When the archive carries TUF or Notary v1 metadata, or the site has pinned or
recorded any (--state, --trust), the metadata is verified from the site's
trust first, every image (and CNAB bundle) must be vouched for, and the new
state is committed only after everything was pushed. Exit codes: 0 ok,
1 operational (retry), 2 usage, 3 refused (the media is bad or hostile).`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "destination registry `HOST[:PORT][/PREFIX]` (optional when --map places every image)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "check the archive's metadata and print the plan; push nothing"},
			&cli.StringFlag{Name: "mapping", Usage: "write a JSON object original reference → relocated reference to `FILE`"},
			&cli.StringFlag{Name: "relocation-mapping", Usage: "write each CNAB bundle's relocation-mapping.json (CNAB core 103) into `DIR`"},
			&cli.StringSliceFlag{Name: "publish-tuf", Usage: "after a successful import, write verified TUF repository NAME (metadata and carried targets, as TUF clients fetch them) to `NAME=DIR`, replacing DIR atomically unless it holds a newer repository (repeatable)"},
			requireSignaturesFlag(), sigstoreRootFlag(), volumeIndexFlag(), volumeDigestFlag(),
			stateFlag(), trustFlag(), trustCAFlag(), policyFlag(), inspectFlag(), warnFlag(), jobsFlag(), retriesFlag(), plainHTTPFlag(), plainHTTPHostFlag(), jsonFlag(), quietFlag(),
		}, append(registryFlags("the --to registry"), selectFlags()...)...),
		Action: func(c *cli.Context) error {
			path, err := oneArg(c, "ARCHIVE")
			if err != nil {
				return err
			}
			include, exclude, placed, err := selection(c)
			if err != nil {
				return err
			}
			if c.String("to") == "" && placed == nil {
				return usagef("import needs --to HOST[:PORT][/PREFIX] (or a --map that places every image)")
			}
			to, err := trustOptions(c)
			if err != nil {
				return err
			}
			stdinBusy := ""
			if path == "-" {
				stdinBusy = `ARCHIVE "-"`
			}
			ro, err := e.registryOptions(c, placedRegistries(c.String("to"), placed), stdinBusy)
			if err != nil {
				return err
			}
			cl, err := relocate.NewClient(ro)
			if err != nil {
				return err
			}
			b := e.progress(c)
			rep, err := relocate.Import(c.Context, relocate.ImportOptions{
				Archive: path, Stdin: e.stdin, To: c.String("to"), DryRun: c.Bool("dry-run"), Trust: to,
				MappingFile: c.String("mapping"), RelocationMappingDir: c.String("relocation-mapping"),
				Include: include, Exclude: exclude, Map: placed,
				Jobs: c.Int("jobs"), Client: cl, Progress: progressOf(b), Volumes: volumeOptions(c),
			})
			b.wait()
			if rep == nil {
				return err
			}
			e.sayTrust(c, rep.Trust)
			e.saySignatures(c, rep.Signatures)
			if rep.Trust != nil {
				for _, p := range rep.Trust.Published {
					if p.Status == "published" {
						e.say(c, "published TUF %s to %s (root v%d, timestamp v%d, %d target file(s))\n", p.Name, p.Dir, p.Versions["root"], p.Versions["timestamp"], len(p.Targets))
					}
				}
			}
			for _, im := range rep.Images {
				e.say(c, "%-9s %s -> %s%s\n", im.Status, im.Ref, im.Target, platformNote(im))
			}
			e.sayImport(c, rep)
			if rep.Verdict != "planned" && rep.Verdict != "refused" {
				e.say(c, "blobs: %d pushed (%s), %d mounted, %d already present; %d attached artifact(s) discoverable\n", rep.BlobsPushed, human(rep.BytesPushed), rep.BlobsMounted, rep.BlobsSkipped, rep.Attachments)
			}
			for _, ib := range rep.Bundles {
				e.say(c, "bundle %s -> %s (bundle.json %s), relocation mapping attached\n", ib.Ref, ib.Target, ib.Digest)
			}
			if d := rep.Delta; d != nil && rep.Verdict != "refused" {
				e.say(c, "delta: the %d blob(s) it expects (%s, carried by %s) are at the destination\n", len(d.Expected), human(d.ExpectedBytes), baseNames(d))
			}
			if jerr := e.report(c, rep); jerr != nil {
				return jerr
			}
			return err
		},
	})
}

func inspectCmd(e *env) *cli.Command {
	return withUsage(&cli.Command{
		Name:        "inspect",
		Usage:       "list what an archive holds",
		ArgsUsage:   "ARCHIVE",
		Description: "Reads the archive's metadata (not its layers) and lists images and blobs. It checks nothing: use verify.",
		Flags:       []cli.Flag{jsonFlag(), quietFlag()},
		Action: func(c *cli.Context) error {
			path, err := oneArg(c, "ARCHIVE")
			if err != nil {
				return err
			}
			rep, err := relocate.Inspect(c.Context, path, e.stdin)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.report(c, rep)
			}
			w := bufio.NewWriter(e.stdout)
			fmt.Fprintf(w, "%s (%s compression): %d image(s), %d blobs, %s\n", path, rep.Compression, len(rep.Images), len(rep.Blobs), human(rep.Bytes))
			for _, im := range rep.Images {
				fmt.Fprintf(w, "  %s\n    %s %s (%d bytes)\n", im.Ref, im.Digest, im.MediaType, im.Size)
				if len(im.Platforms) > 0 {
					fmt.Fprintf(w, "    platforms: %s\n", strings.Join(im.Platforms, ", "))
				}
				if im.Index != nil {
					fmt.Fprintf(w, "    chosen (--platform) from index %s %s; lands as this manifest\n", im.Index.Ref, im.Index.Digest)
				}
				for _, a := range im.Attached {
					what := a.ArtifactType
					if a.Tag != "" {
						what = "tag " + a.Tag
					}
					fmt.Fprintf(w, "    attached to %s: %s %s (%s)\n", short(a.Subject.String()), a.Kind, a.Digest, what)
				}
			}
			for _, b := range rep.Bundles {
				fmt.Fprintf(w, "  CNAB bundle %s: bundle.json %s, %d image(s)\n", b.Ref, b.Digest, len(b.Images))
			}
			if d := rep.Delta; d != nil {
				fmt.Fprintf(w, "  delta: expects %d layer(s), %s, at the site, carried by %s\n", len(d.Expected), human(d.ExpectedBytes), baseNames(d))
			}
			for _, group := range []struct {
				kind  string
				repos []relocate.TrustRepo
			}{{"TUF repository", rep.TUF}, {"Notary GUN", rep.Notary}} {
				for _, r := range group.repos {
					var roles []string
					for _, ro := range r.Roles {
						roles = append(roles, fmt.Sprintf("%s v%d (expires %s)", ro.Role, ro.Version, ro.Expires.Format("2006-01-02")))
					}
					fmt.Fprintf(w, "  %s %s from %s: %s\n", group.kind, r.Name, r.URL, strings.Join(roles, ", "))
					if len(r.Targets) > 0 {
						fmt.Fprintf(w, "    target files carried: %s\n", strings.Join(r.Targets, ", "))
					}
				}
			}
			return w.Flush()
		},
	})
}

// buildInfo is the module version and the commit relocate was built from.
func buildInfo() (ver, commit string, modified bool) {
	ver = "(unknown)"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	ver = bi.Main.Version
	for _, st := range bi.Settings {
		switch st.Key {
		case "vcs.revision":
			commit = st.Value
		case "vcs.modified":
			modified = st.Value == "true"
		}
	}
	return
}

func version() string {
	ver, commit, modified := buildInfo()
	if commit != "" {
		ver += " (commit " + commit
		if modified {
			ver += ", modified"
		}
		ver += ")"
	}
	return ver
}

func versionCmd(e *env) *cli.Command {
	return withUsage(&cli.Command{
		Name:  "version",
		Usage: "print relocate's module version and the commit it was built from",
		Flags: []cli.Flag{jsonFlag(), quietFlag()},
		Action: func(c *cli.Context) error {
			if c.Bool("json") {
				ver, commit, modified := buildInfo()
				return e.report(c, map[string]any{"version": ver, "commit": commit, "modified": modified})
			}
			fmt.Fprintln(e.stdout, "relocate "+version())
			return nil
		},
	})
}

// listSome names the first n items and counts the rest.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func tufSources(c *cli.Context) ([]relocate.TUFSource, error) {
	urls, err := nameValues(c.StringSlice("tuf"), "--tuf")
	if err != nil {
		return nil, err
	}
	roots, err := nameValues(c.StringSlice("tuf-root"), "--tuf-root")
	if err != nil {
		return nil, err
	}
	globs := map[string][]string{}
	for _, kv := range c.StringSlice("tuf-targets") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, usagef("--tuf-targets %q: want NAME=GLOB", kv)
		}
		if _, ok := urls[k]; !ok {
			return nil, usagef("--tuf-targets %s given without --tuf %s=URL", k, k)
		}
		globs[k] = append(globs[k], v)
	}
	var out []relocate.TUFSource
	for name, u := range urls {
		src := relocate.TUFSource{Name: name, URL: u, Targets: globs[name]}
		if f, ok := roots[name]; ok {
			if src.Root, err = os.ReadFile(f); err != nil {
				return nil, fmt.Errorf("--tuf-root %s: %w", name, err)
			}
			delete(roots, name)
		}
		out = append(out, src)
	}
	for name := range roots {
		return nil, usagef("--tuf-root %s given without --tuf %s=URL", name, name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func notarySources(c *cli.Context) ([]relocate.NotarySource, error) {
	servers, err := nameValues(c.StringSlice("notary"), "--notary")
	if err != nil {
		return nil, err
	}
	var ca []byte
	if f := c.String("notary-ca"); f != "" {
		if ca, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("--notary-ca: %w", err)
		}
	}
	var out []relocate.NotarySource
	for gun, server := range servers {
		out = append(out, relocate.NotarySource{GUN: gun, Server: server, CA: ca})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GUN < out[j].GUN })
	return out, nil
}

func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", usagef("%s needs exactly one %s (got %d arguments)", c.Command.Name, what, c.NArg())
	}
	return c.Args().First(), nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

func human(n int64) string { return relocate.HumanBytes(n) }

func progressOf(b *bars) relocate.Progress {
	if b == nil {
		return nil
	}
	return b
}

func (b *bars) wait() {
	if b != nil {
		b.Wait()
	}
}
