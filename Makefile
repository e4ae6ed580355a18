# relocate: carry signed software across an air gap.
GO      ?= go
BIN     := bin/relocate

.PHONY: build demo test test-unit fuzz bench deps tools clean

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/relocate

# Two local registries, sample images, export -> verify -> import.
demo: deps build
	$(GO) run ./internal/demo -relocate $(BIN)

# Unit tests and end-to-end tests against real registries on 127.0.0.1,
# signing with the real cosign and notation (make tools builds them once).
test: deps tools
	RELOCATE_REQUIRE_REGISTRY=1 RELOCATE_REQUIRE_NOTARY=1 RELOCATE_REQUIRE_INTOTO=1 RELOCATE_REQUIRE_TOOLS=1 $(GO) test -count=1 ./...

test-unit:
	$(GO) test -count=1 -short ./...

# Every fuzz test (func FuzzX(f *testing.F) in any _test.go file, found
# anew each time), each for FUZZTIME: go test takes one -fuzz target per
# run. Per new input, minimising is capped at FUZZMINIMIZETIME runs: Go's
# default of 60s spends a short run minimising inputs of a few KiB.
FUZZTIME ?= 30s
FUZZMINIMIZETIME ?= 200x

fuzz:
	@set -e; grep -rlE --include='*_test.go' --exclude-dir=testdata --exclude-dir=.git '^func Fuzz[A-Za-z0-9_]*\([A-Za-z_]+ \*testing\.F\)' . | sort | \
	while read -r file; do \
	  for name in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_]+ \*testing\.F\).*/\1/p' "$$file"); do \
	    echo "== $$(dirname "$$file") $$name ($(FUZZTIME))"; \
	    $(GO) test "$$(dirname "$$file")" -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME); \
	  done; \
	done

# Throughput and memory against the machine's limits, crane and skopeo;
# writes docs/benchmarks.md.
bench: deps build
	$(GO) run ./internal/bench -scale -out docs/benchmarks.md

# The registry the tests and the demo run (Debian's CNCF distribution), the
# notary server and client for the Notary v1 tests, the in-toto tools for the
# CNAB Security tests, skopeo for the benchmark's comparison, and skopeo,
# podman and containerd for the tests that read an archive with them.
deps:
	@{ test -x /usr/bin/docker-registry && command -v notary-server >/dev/null 2>&1 && command -v in-toto-run >/dev/null 2>&1 \
	   && command -v podman >/dev/null 2>&1 && command -v containerd >/dev/null 2>&1; } || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq docker-registry skopeo notary in-toto podman containerd; }

# The signing tools the signature tests drive (cosign, notation, oras, crane),
# built once at exact versions into $${RELOCATE_TOOLS_DIR:-~/.cache/relocate/tools}.
tools:
	internal/tools/install.sh

clean:
	rm -rf bin
