// Package testregistry runs a real CNCF distribution registry
// (/usr/bin/docker-registry, Debian package docker-registry) on a free
// loopback port for end-to-end tests and benchmarks.
//
// Each Registry is an isolated child process speaking plain HTTP on
// 127.0.0.1 with filesystem storage in its own directory, so tests can
// inspect or corrupt the storage and run in parallel without sharing state.
// Use New inside tests; use Start where a testing.TB is not available,
// such as in a benchmark driver.
package testregistry
