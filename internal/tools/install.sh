#!/usr/bin/env bash
# Builds the signing tools the signature tests drive (cosign, notation, oras,
# crane) at exact versions into a cache directory, once: building cosign takes
# minutes on a small machine, so a binary already in the cache is kept.
#
#   internal/tools/install.sh [TOOL...]     # default: all four
#   RELOCATE_TOOLS_DIR=/some/dir internal/tools/install.sh cosign
#
# Each binary is cached as DIR/<tool>-<version> with a DIR/<tool> symlink, so
# bumping a version below builds the new one and keeps the tests' lookup simple.
# Builds run outside the project's module (a temp dir, GOWORK=off, no GOFLAGS),
# so relocate's go.mod is never touched.
set -euo pipefail

COSIGN_VERSION=v2.6.5
NOTATION_VERSION=v1.3.2
ORAS_VERSION=v1.3.6

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${RELOCATE_TOOLS_DIR:-$HOME/.cache/relocate/tools}"
mkdir -p "$dir"

# crane follows the go-containerregistry version relocate's go.mod requires.
CRANE_VERSION="$(awk '$1=="github.com/google/go-containerregistry"{print $2; exit}' "$root/go.mod")"
: "${CRANE_VERSION:?go-containerregistry not found in go.mod}"

export GOWORK=off GOFLAGS= CGO_ENABLED=0

log() { echo "install.sh: $*" >&2; }

# cached TOOL VERSION: true when DIR/TOOL-VERSION exists, and (re)points the symlink.
cached() {
  if [ -x "$dir/$1-$2" ]; then
    ln -sfn "$1-$2" "$dir/$1"
    return 0
  fi
  return 1
}

# gobuild TOOL VERSION PKG: go install PKG@VERSION into a temp GOBIN, then move
# the binary into the cache under its versioned name (rename: never half-written).
gobuild() {
  local tool=$1 version=$2 pkg=$3 tmp start
  cached "$tool" "$version" && { log "$tool $version cached"; return 0; }
  tmp="$(mktemp -d)"
  start=$(date +%s)
  log "building $tool $version ($pkg)"
  (cd "$tmp" && GOBIN="$tmp/bin" go install "$pkg@$version")
  mv "$tmp/bin/$tool" "$dir/.$tool-$version.tmp"
  mv "$dir/.$tool-$version.tmp" "$dir/$tool-$version"
  rm -rf "$tmp"
  ln -sfn "$tool-$version" "$dir/$tool"
  log "$tool $version built in $(( $(date +%s) - start ))s"
}

# notation: `go install ...@v1.3.2` fails because the proxy refuses the version
# list go install asks for; downloading that exact module version and building
# from the module cache works.
notation() {
  local version=$NOTATION_VERSION tmp start src
  cached notation "$version" && { log "notation $version cached"; return 0; }
  tmp="$(mktemp -d)"
  start=$(date +%s)
  log "building notation $version"
  src="$(cd "$tmp" && go mod download -json "github.com/notaryproject/notation@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  : "${src:?go mod download gave no Dir}"
  # The module cache is read-only; build from it with its own go.mod and
  # go.sum. An empty BuildMetadata makes `notation version` say v1.3.2, as a
  # release build does, rather than "+unreleased".
  (cd "$src" && go build -trimpath -ldflags "-X github.com/notaryproject/notation/internal/version.BuildMetadata=" -o "$tmp/notation" ./cmd/notation)
  mv "$tmp/notation" "$dir/.notation-$version.tmp"
  mv "$dir/.notation-$version.tmp" "$dir/notation-$version"
  rm -rf "$tmp"
  ln -sfn "notation-$version" "$dir/notation"
  log "notation $version built in $(( $(date +%s) - start ))s"
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(cosign notation oras crane)
for t in "${tools[@]}"; do
  case "$t" in
    cosign)   gobuild cosign "$COSIGN_VERSION" github.com/sigstore/cosign/v2/cmd/cosign ;;
    notation) notation ;;
    oras)     gobuild oras "$ORAS_VERSION" oras.land/oras/cmd/oras ;;
    crane)    gobuild crane "$CRANE_VERSION" github.com/google/go-containerregistry/cmd/crane ;;
    *) log "unknown tool $t (cosign, notation, oras, crane)"; exit 2 ;;
  esac
done
echo "$dir"
