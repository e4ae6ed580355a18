#!/usr/bin/env bash
# bundle-chain.sh BUNDLE_JSON OUTDIR - records a real in-toto supply chain whose final
# product is bundle.json, with Debian's in-toto tools (apt-get install in-toto):
#   OUTDIR/root.layout            signed by owner (RSA), step "package" by alice, one
#                                 inspection "check" (which relocate does not run by default)
#   OUTDIR/owner.pub              the layout key
#   OUTDIR/package.<keyid8>.link  in-toto-run's record of: cp in/bundle.json bundle.json
# Used by the CNAB Security tests; keys are random on every run.
set -euo pipefail
BUNDLE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
PY=/usr/bin/python3 # the Debian tools' python; a pyenv python3 has no in_toto module
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
in-toto-keygen -t rsa -b 3072 owner >/dev/null
in-toto-keygen -t ed25519 alice >/dev/null
"$PY" - <<'PYEOF'
from securesystemslib.interface import import_publickeys_from_file
from securesystemslib import KEY_TYPE_ED25519
from in_toto.models.layout import Layout, Step, Inspection
from in_toto.models.metadata import Metablock
keys = import_publickeys_from_file(["alice.pub"], [KEY_TYPE_ED25519])
alice = list(keys)[0]
layout = Layout()
layout.readme = "relocate test: package bundle.json (alice)"
layout.keys = keys
package = Step(name="package")
package.pubkeys = [alice]
package.expected_command = ["cp", "in/bundle.json", "bundle.json"]
package.expected_materials = [["ALLOW", "in/bundle.json"], ["DISALLOW", "*"]]
package.expected_products = [["CREATE", "bundle.json"], ["DISALLOW", "*"]]
layout.steps = [package]
check = Inspection(name="check")
check.run = ["true"]
check.expected_materials = [["ALLOW", "*"]]
check.expected_products = [["ALLOW", "*"]]
layout.inspect = [check]
layout.set_relative_expiration(months=12)
layout.validate()
Metablock(signed=layout).dump("root.layout.unsigned")
PYEOF
in-toto-sign -f root.layout.unsigned -k owner -t rsa -o "$OUT/root.layout"
cp owner.pub "$OUT/owner.pub"
mkdir in && cp "$BUNDLE" in/bundle.json
in-toto-run -n package -k alice -t ed25519 -m in/bundle.json -p bundle.json -d "$OUT" -- cp in/bundle.json bundle.json >/dev/null
