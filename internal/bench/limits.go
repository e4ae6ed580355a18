package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"
)

const (
	// pullParallel matches a typical client's concurrent blob downloads.
	pullParallel = 4
	// diskProbeSize is large enough to get past the drive's write cache.
	diskProbeSize = 1 << 30
	ioBuf         = 1 << 20
)

// hashFileMBs is Go's crypto/sha256 over a file: the ceiling for verify,
// which must at least read and hash every byte of the archive.
func hashFileMBs(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("sha256 limit: %w", err)
	}
	defer f.Close()
	start := time.Now()
	n, err := io.CopyBuffer(sha256.New(), f, make([]byte, ioBuf))
	if err != nil {
		return 0, fmt.Errorf("sha256 limit: read %s: %w", path, err)
	}
	return mbps(n, time.Since(start).Seconds()), nil
}

// hashFileParallelMBs hashes n equal sections of the file concurrently:
// the ceiling for a verifier that hashes several blobs at once, which the
// single-stream figure above does not bound.
func hashFileParallelMBs(path string, n int) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("parallel sha256 limit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("parallel sha256 limit: %w", err)
	}
	size := fi.Size()
	chunk := (size + int64(n) - 1) / int64(n)
	var g errgroup.Group
	start := time.Now()
	for off := int64(0); off < size; off += chunk {
		g.Go(func() error {
			_, err := io.CopyBuffer(sha256.New(), io.NewSectionReader(f, off, min(chunk, size-off)), make([]byte, ioBuf))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("parallel sha256 limit: read %s: %w", path, err)
	}
	return mbps(size, time.Since(start).Seconds()), nil
}

// pullMBs fetches every blob from the registry over plain HTTP into
// io.Discard, without hashing or writing: the ceiling for export.
func pullMBs(ctx context.Context, host string, blobs []blob) (float64, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pullParallel}}
	defer client.CloseIdleConnections()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(pullParallel)
	start := time.Now()
	var total int64
	for _, b := range blobs {
		total += b.size
		g.Go(func() error { return getBlob(ctx, client, host, b) })
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("loopback pull limit: %w", err)
	}
	return mbps(total, time.Since(start).Seconds()), nil
}

func getBlob(ctx context.Context, client *http.Client, host string, b blob) error {
	url := fmt.Sprintf("http://%s/v2/%s/blobs/%s", host, b.repo, b.digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	n, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, ioBuf))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if n != b.size {
		return fmt.Errorf("GET %s: %d bytes, want %d", url, n, b.size)
	}
	return nil
}

// diskWriteMBs writes 1 GiB of random bytes to dir and fsyncs it: the
// ceiling for export, which must land the whole archive on disk.
func diskWriteMBs(dir string) (float64, error) {
	f, err := os.CreateTemp(dir, "disk-probe-*")
	if err != nil {
		return 0, fmt.Errorf("disk limit: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, ioBuf)
	if _, err := rand.Read(buf); err != nil {
		return 0, fmt.Errorf("disk limit: %w", err)
	}
	start := time.Now()
	for written := 0; written < diskProbeSize; written += len(buf) {
		if _, err := f.Write(buf); err != nil {
			return 0, fmt.Errorf("disk limit: write: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("disk limit: fsync: %w", err)
	}
	return mbps(diskProbeSize, time.Since(start).Seconds()), nil
}
