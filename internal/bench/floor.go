package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// section is where one blob's bytes lie in the archive file.
type section struct{ off, size int64 }

// blobSections finds every blob of an uncompressed OCI-layout tar
// ("blobs/ALG/HEX" entries), keyed by digest, so that the floor can send
// the very bytes relocate import reads, straight from the file.
func blobSections(f *os.File) (map[string]section, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	out := map[string]section{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		parts := strings.Split(strings.TrimPrefix(h.Name, "./"), "/")
		if h.Typeflag != tar.TypeReg || len(parts) != 3 || parts[0] != "blobs" {
			continue
		}
		// tar.Reader reads headers block by block without buffering ahead,
		// so the file's offset is now the start of this entry's data.
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		out[parts[1]+":"+parts[2]] = section{off: off, size: h.Size}
	}
}

// uploadBlobs puts every blob into the registry at host the simplest way
// the distribution API allows: a POST to open an upload, then one PUT with
// the whole body and its digest, jobs at a time. Nothing is asked first
// and nothing is mounted: what is left is the registry's own cost of
// taking the bytes (receiving, hashing and storing them).
func uploadBlobs(ctx context.Context, host string, ra io.ReaderAt, blobs []blob, where map[string]section, jobs int) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: jobs, DisableCompression: true}}
	defer client.CloseIdleConnections()
	// Largest first, so that no big blob starts last and leaves the other
	// connections idle: the floor should be the best case.
	order := slices.Clone(blobs)
	slices.SortStableFunc(order, func(a, b blob) int { return int(b.size - a.size) })
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, bl := range order {
		sec, ok := where[bl.digest]
		if !ok || sec.size != bl.size {
			return fmt.Errorf("ingest floor: blob %s (%d bytes) not in the archive", bl.digest, bl.size)
		}
		g.Go(func() error { return uploadBlob(ctx, client, host, io.NewSectionReader(ra, sec.off, sec.size), bl) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("ingest floor: %w", err)
	}
	return nil
}

func uploadBlob(ctx context.Context, client *http.Client, host string, body *io.SectionReader, bl blob) error {
	start := fmt.Sprintf("http://%s/v2/%s/blobs/uploads/", host, bl.repo)
	resp, err := do(ctx, client, http.MethodPost, start, nil, 0, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := resp.Location() // resolved against the POST's URL
	if err != nil {
		return fmt.Errorf("POST %s: %w", start, err)
	}
	q := loc.Query()
	q.Set("digest", bl.digest)
	loc.RawQuery = q.Encode()
	_, err = do(ctx, client, http.MethodPut, loc.String(), body, body.Size(), http.StatusCreated)
	return err
}

// do sends one request and checks its status; the body is drained so that
// the connection goes back to the pool.
func do(ctx context.Context, client *http.Client, method, url string, body io.Reader, size int64, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return resp, nil
}

// measureFloor times uploadBlobs of set's blobs, read from the archive
// relocate exported, into a fresh registry in dir.
func (b *bench) measureFloor(ctx context.Context, dir, archive string, set *dataset) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("ingest floor: %w", err)
	}
	defer f.Close()
	where, err := blobSections(f)
	if err != nil {
		return fmt.Errorf("ingest floor: %w", err)
	}
	dst, err := b.startRegistry(ctx, dir)
	if err != nil {
		return err
	}
	defer b.stopRegistry(dst)
	s, err := b.withRegistryCPU(func() (sample, error) {
		cpu, start := selfCPU(), time.Now()
		err := uploadBlobs(ctx, dst.Host, f, set.blobs, where, b.cfg.jobs)
		return sample{secs: time.Since(start).Seconds(), cpuSecs: selfCPU() - cpu}, err
	})
	if err != nil {
		return err
	}
	b.res.add(ingestFloor, s)
	b.logSample(ingestFloor, s)
	return nil
}
