#!/usr/bin/env bash
# make.sh - regenerates the in-toto fixtures of package intoto with Debian's in-toto tools
# (apt-get install in-toto; 1.3.1 with python3-securesystemslib 0.26.0 when written).
# Adapted from /work/shared/testbed/intoto.sh. Run it from anywhere; it rewrites the
# fixture files next to it. Keys are random, so every run yields new bytes: commit the
# result, tests never need Python.
#
#   keys/owner.pub            RSA-3072 PEM, signs root.layout, expired.layout, super.layout
#   keys/{alice,bob,carol,mallory}.pub   securesystemslib JSON (ed25519, ecdsa, ed25519, ed25519)
#   root.layout               build (alice) -> package (bob), inspection "untar"; expires in 10 years
#   expired.layout            same supply chain, expired on 2021-01-01
#   links/                    build.<alice8>.link, package.<bob8>.link (real in-toto-run output)
#   mallory/build.<mal8>.link the build step recorded and signed by mallory (not authorized)
#   artifacts/                src/ (inputs), dist/app.tar.gz (final product)
#   super/                    super.layout (owner) with one step "supply" by carol, whose link
#                             supply.<carol8>.link is a sublayout (build -> package) signed by
#                             carol, its links in supply.<carol8>/
# Every good chain is checked with in-toto-verify before anything is written.
set -euo pipefail

OUT=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3 # the Debian tools' python; a pyenv python3 has no in_toto module
for t in in-toto-keygen in-toto-run in-toto-sign in-toto-verify; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install in-toto)" >&2; exit 1; }
done

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/keys" "$W/work/src"
cd "$W/keys"
in-toto-keygen -t rsa -b 3072 owner >/dev/null
in-toto-keygen -t ed25519 alice >/dev/null
in-toto-keygen -t ecdsa bob >/dev/null
in-toto-keygen -t ed25519 carol >/dev/null
in-toto-keygen -t ed25519 mallory >/dev/null

keyid8() { # the 8-hex-digit key id prefix used in link file names
  "$PY" -c 'import sys
from securesystemslib.interface import import_publickeys_from_file
print(list(import_publickeys_from_file([sys.argv[1]], [sys.argv[2]]))[0][:8])' "$1" "$2"
}

# ---- layouts: the steps are the same in root, expired and the sublayout
cd "$W"
"$PY" - <<'EOF'
from securesystemslib.interface import import_publickeys_from_file
from securesystemslib import KEY_TYPE_ED25519, KEY_TYPE_ECDSA
from in_toto.models.layout import Layout, Step, Inspection
from in_toto.models.metadata import Metablock

keys = import_publickeys_from_file(["keys/alice.pub", "keys/bob.pub"], [KEY_TYPE_ED25519, KEY_TYPE_ECDSA])
alice, bob = list(keys)

def chain(readme, inspect=True):
    layout = Layout()
    layout.readme = readme
    layout.keys = keys
    build = Step(name="build")
    build.pubkeys = [alice]
    build.expected_command = ["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0",
                              "--numeric-owner", "-cf", "build/app.tar", "src"]
    build.expected_materials = [["ALLOW", "src/*"], ["DISALLOW", "*"]]
    build.expected_products = [["CREATE", "build/app.tar"], ["DISALLOW", "*"]]
    package = Step(name="package")
    package.pubkeys = [bob]
    package.expected_command = ["sh", "-c", "mkdir -p dist && gzip -9 -n -c build/app.tar > dist/app.tar.gz"]
    package.expected_materials = [["MATCH", "build/app.tar", "WITH", "PRODUCTS", "FROM", "build"], ["DISALLOW", "*"]]
    package.expected_products = [["CREATE", "dist/app.tar.gz"], ["DISALLOW", "*"]]
    layout.steps = [build, package]
    if inspect:
        untar = Inspection(name="untar")
        untar.run = ["tar", "xzf", "dist/app.tar.gz"]
        untar.expected_materials = [["MATCH", "dist/app.tar.gz", "WITH", "PRODUCTS", "FROM", "package"],
                                    ["ALLOW", "root.layout"], ["ALLOW", "owner.pub"], ["ALLOW", "*.link"],
                                    ["DISALLOW", "*"]]
        untar.expected_products = [["MATCH", "src/*", "WITH", "MATERIALS", "FROM", "build"],
                                   ["ALLOW", "dist/app.tar.gz"], ["ALLOW", "root.layout"], ["ALLOW", "owner.pub"],
                                   ["ALLOW", "*.link"], ["DISALLOW", "*"]]
        layout.inspect = [untar]
    return layout

root = chain("fixture: build (alice) -> package (bob) -> untar inspection")
root.set_relative_expiration(years=10)
root.validate()
Metablock(signed=root).dump("root.layout.unsigned")

expired = chain("fixture: expired copy of root.layout")
expired.expires = "2021-01-01T00:00:00Z"
expired.validate()
Metablock(signed=expired).dump("expired.layout.unsigned")

sub = chain("fixture: sublayout signed by carol", inspect=False)
sub.set_relative_expiration(years=10)
sub.validate()
Metablock(signed=sub).dump("sub.layout.unsigned")

carol = import_publickeys_from_file(["keys/carol.pub"], [KEY_TYPE_ED25519])
carol_id = list(carol)[0]
sup = Layout()
sup.readme = "fixture: one step 'supply' delegated by carol to a sublayout"
sup.keys = carol
supply = Step(name="supply")
supply.pubkeys = [carol_id]
supply.expected_materials = [["ALLOW", "src/*"], ["DISALLOW", "*"]]
supply.expected_products = [["CREATE", "dist/app.tar.gz"], ["DISALLOW", "*"]]
sup.steps = [supply]
sup.set_relative_expiration(years=10)
sup.validate()
Metablock(signed=sup).dump("super.layout.unsigned")
EOF
for l in root expired super; do
  in-toto-sign -f $l.layout.unsigned -k keys/owner -t rsa -o $l.layout
done
CAROL8=$(keyid8 keys/carol.pub ed25519)
in-toto-sign -f sub.layout.unsigned -k keys/carol -t ed25519 -o "supply.$CAROL8.link"

# ---- the steps, each recorded by in-toto-run over real files
cd "$W/work"
printf '#!/bin/sh\necho "hello from the fixture app"\n' >src/app.sh
printf '{"name":"app","version":"1.0.0"}\n' >src/config.json
mkdir -p build
in-toto-run -n build -k ../keys/alice -t ed25519 -m src -p build/app.tar -- \
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf build/app.tar src
in-toto-run -n package -k ../keys/bob -t ecdsa -m build/app.tar -p dist/app.tar.gz -- \
  sh -c "mkdir -p dist && gzip -9 -n -c build/app.tar > dist/app.tar.gz"
mkdir -p ../mallory && (
  mkdir -p ../mwork && cp -r src ../mwork/ && mkdir -p ../mwork/build && cd ../mwork
  in-toto-run -n build -k ../keys/mallory -t ed25519 -m src -p build/app.tar -- \
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf build/app.tar src
  mv build.*.link ../mallory/
)

# ---- in-toto-verify must pass in clean directories holding only what a consumer receives
mkdir -p "$W/verify/dist" && cd "$W/verify"
cp ../root.layout ../keys/owner.pub ../work/*.link . && cp ../work/dist/app.tar.gz dist/
in-toto-verify --layout root.layout --layout-keys owner.pub -t rsa
mkdir -p "$W/vsuper/supply.$CAROL8" && cd "$W/vsuper"
cp ../super.layout ../keys/owner.pub "../supply.$CAROL8.link" . && cp ../work/*.link "supply.$CAROL8/"
in-toto-verify --layout super.layout --layout-keys owner.pub -t rsa
if (cd "$W/verify" && in-toto-verify --layout ../expired.layout --layout-keys owner.pub -t rsa) >/dev/null 2>&1; then
  echo "make.sh: expired layout unexpectedly verified" >&2; exit 1
fi

# ---- write the fixtures
cd "$OUT"
rm -rf keys links mallory artifacts super root.layout expired.layout VERSION
mkdir -p keys links artifacts super/"supply.$CAROL8"
cp "$W"/keys/*.pub keys/
cp "$W/root.layout" "$W/expired.layout" .
cp "$W"/work/*.link links/
cp -r "$W/mallory" .
cp -r "$W/work/src" "$W/work/dist" artifacts/
cp "$W/super.layout" "$W/supply.$CAROL8.link" super/
cp "$W"/work/*.link super/"supply.$CAROL8"/
{ in-toto-verify --version 2>&1 || true; } >VERSION
echo "make.sh: fixtures written to $OUT"
