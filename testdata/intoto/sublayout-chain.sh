#!/usr/bin/env bash
# sublayout-chain.sh BUNDLE_JSON OUTDIR - records a real in-toto supply chain with a
# sublayout whose final product is bundle.json, with Debian's in-toto tools
# (apt-get install in-toto). Keys are random on every run.
#
#   OUTDIR/root.layout        signed by owner (RSA), expires in 10 years: one step
#                             "supply" whose functionary is carol (ed25519), and one
#                             inspection "check" (which relocate does not run by default)
#   OUTDIR/owner.pub          the root layout's key
#   OUTDIR/links/supply.<carol8>.link
#                             the sublayout, signed by carol, expires in 1 year: "fetch"
#                             (alice, ed25519: in/bundle.json -> staging/bundle.json), then
#                             "package" (bob, ecdsa: staging/bundle.json -> bundle.json)
#   OUTDIR/links/supply.<carol8>/fetch.<alice8>.link, package.<bob8>.link
#                             in-toto-run's records of those steps
#   OUTDIR/variants/expired/supply.<carol8>.link
#                             the same sublayout signed by carol, expired on 2021-01-01
#   OUTDIR/variants/mallory/package.<mallory8>.link
#                             the package step recorded and signed by mallory (not authorized)
#   OUTDIR/variants/mallory/supply.<carol8>.link
#                             the sublayout signed by mallory instead of carol
#   OUTDIR/keyids             "<name> <keyid8>" for owner, alice, bob, carol, mallory
#
# The good chain is checked with in-toto-verify (the reference implementation) before
# the script succeeds. Used by the in-toto unit tests and the CNAB Security tests.
set -euo pipefail
BUNDLE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
PY=/usr/bin/python3 # the Debian tools' python; a pyenv python3 has no in_toto module
for t in in-toto-keygen in-toto-run in-toto-sign in-toto-verify; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install in-toto)" >&2; exit 1; }
done
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
in-toto-keygen -t rsa -b 3072 owner >/dev/null
for k in alice carol mallory; do in-toto-keygen -t ed25519 $k >/dev/null; done
in-toto-keygen -t ecdsa bob >/dev/null

"$PY" - <<'PYEOF'
from securesystemslib.interface import import_publickeys_from_file
from securesystemslib import KEY_TYPE_ED25519, KEY_TYPE_ECDSA, KEY_TYPE_RSA
from in_toto.models.layout import Layout, Step, Inspection
from in_toto.models.metadata import Metablock

def keyid(path, kind):
    return list(import_publickeys_from_file([path], [kind]))[0]

with open("keyids", "w") as f:
    for name, kind in [("owner", KEY_TYPE_RSA), ("alice", KEY_TYPE_ED25519), ("bob", KEY_TYPE_ECDSA),
                       ("carol", KEY_TYPE_ED25519), ("mallory", KEY_TYPE_ED25519)]:
        f.write("%s %s\n" % (name, keyid(name + ".pub", kind)[:8]))

carol = import_publickeys_from_file(["carol.pub"], [KEY_TYPE_ED25519])
root = Layout()
root.readme = "relocate test: supply (carol, a sublayout) -> bundle.json"
root.keys = carol
supply = Step(name="supply")
supply.pubkeys = list(carol)
supply.expected_materials = [["ALLOW", "in/bundle.json"], ["DISALLOW", "*"]]
supply.expected_products = [["CREATE", "bundle.json"], ["DISALLOW", "*"]]
root.steps = [supply]
check = Inspection(name="check")
check.run = ["true"]
check.expected_materials = [["ALLOW", "*"]]
check.expected_products = [["ALLOW", "*"]]
root.inspect = [check]
root.set_relative_expiration(years=10)
root.validate()
Metablock(signed=root).dump("root.layout.unsigned")

def sub(expires=None):
    keys = import_publickeys_from_file(["alice.pub", "bob.pub"], [KEY_TYPE_ED25519, KEY_TYPE_ECDSA])
    alice, bob = list(keys)
    layout = Layout()
    layout.readme = "relocate test: carol's sublayout fetch (alice) -> package (bob)"
    layout.keys = keys
    fetch = Step(name="fetch")
    fetch.pubkeys = [alice]
    fetch.expected_command = ["sh", "-c", "mkdir -p staging && cp in/bundle.json staging/bundle.json"]
    fetch.expected_materials = [["ALLOW", "in/bundle.json"], ["DISALLOW", "*"]]
    fetch.expected_products = [["CREATE", "staging/bundle.json"], ["DISALLOW", "*"]]
    package = Step(name="package")
    package.pubkeys = [bob]
    package.expected_command = ["cp", "staging/bundle.json", "bundle.json"]
    package.expected_materials = [["MATCH", "staging/bundle.json", "WITH", "PRODUCTS", "FROM", "fetch"],
                                  ["DISALLOW", "*"]]
    package.expected_products = [["CREATE", "bundle.json"], ["DISALLOW", "*"]]
    layout.steps = [fetch, package]
    if expires:
        layout.expires = expires
    else:
        layout.set_relative_expiration(years=1)
    layout.validate()
    return Metablock(signed=layout)

sub().dump("sub.layout.unsigned")
sub("2021-01-01T00:00:00Z").dump("expired.layout.unsigned")
PYEOF

CAROL8=$(awk '$1 == "carol" {print $2}' keyids)
SUB="supply.$CAROL8"
mkdir -p "$OUT/links/$SUB" "$OUT/variants/expired" "$OUT/variants/mallory"
in-toto-sign -f root.layout.unsigned -k owner -t rsa -o "$OUT/root.layout"
cp owner.pub "$OUT/owner.pub"
cp keyids "$OUT/keyids"
# A sublayout is a layout signed by the functionary and filed as that step's link.
in-toto-sign -f sub.layout.unsigned -k carol -t ed25519 -o "$OUT/links/$SUB.link"
in-toto-sign -f expired.layout.unsigned -k carol -t ed25519 -o "$OUT/variants/expired/$SUB.link"
in-toto-sign -f sub.layout.unsigned -k mallory -t ed25519 -o "$OUT/variants/mallory/$SUB.link"

# The sublayout's steps, recorded over real files into the sublayout's link directory.
mkdir -p work/in && cp "$BUNDLE" work/in/bundle.json
cp -r work mwork
(cd work
  in-toto-run -n fetch -k ../alice -t ed25519 -m in/bundle.json -p staging/bundle.json -d "$OUT/links/$SUB" -- \
    sh -c "mkdir -p staging && cp in/bundle.json staging/bundle.json" >/dev/null
  in-toto-run -n package -k ../bob -t ecdsa -m staging/bundle.json -p bundle.json -d "$OUT/links/$SUB" -- \
    cp staging/bundle.json bundle.json >/dev/null)
(cd mwork && mkdir -p staging && cp in/bundle.json staging/bundle.json
  in-toto-run -n package -k ../mallory -t ed25519 -m staging/bundle.json -p bundle.json -d "$OUT/variants/mallory" -- \
    cp staging/bundle.json bundle.json >/dev/null)

# The reference implementation must accept the good chain (it runs the inspection "true")
# and refuse it with the expired sublayout.
mkdir verify && cd verify
cp -r "$OUT/links/." . && cp "$OUT/root.layout" "$OUT/owner.pub" .
out=$(in-toto-verify --layout root.layout --layout-keys owner.pub -t rsa 2>&1) || {
  echo "sublayout-chain.sh: in-toto-verify refused the good chain:" >&2; echo "$out" >&2; exit 1; }
cp "$OUT/variants/expired/$SUB.link" .
if in-toto-verify --layout root.layout --layout-keys owner.pub -t rsa >/dev/null 2>&1; then
  echo "sublayout-chain.sh: in-toto-verify accepted the expired sublayout" >&2; exit 1
fi
