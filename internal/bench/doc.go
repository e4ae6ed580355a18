// Command bench measures relocate against its peers (crane, skopeo) and
// against the machine's own limits, and writes the result to
// docs/benchmarks.md. It is run by `make bench`, which calls
//
//	go run ./internal/bench -out docs/benchmarks.md
//
// Everything happens in one run on loopback: a source registry (a real CNCF
// distribution, see internal/testregistry) is filled with a reproducible set
// of incompressible images (internal/testimages); relocate, crane and skopeo
// then export the set and import it into fresh destination registries, each
// repeated -runs times, taking the median wall time and the peak RSS. The
// same run measures what the machine allows: Go's SHA-256 throughput over the
// exported archive, plain-HTTP loopback pull throughput from the source
// registry, and fsync'd disk writes, so relocate's numbers can be read as a
// fraction of what is achievable here.
//
// The document is generated entirely by this program and overwritten on each
// run, so it never mixes numbers from different machines or commits.
package main
