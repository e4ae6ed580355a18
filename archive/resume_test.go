package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testContent is a plan's content: small entries in memory, layers
// "fetched" from memory, with failures on demand.
type testContent struct {
	data    [][]byte
	small   int // entries before this one are held in memory
	mu      sync.Mutex
	failAt  map[int]bool // Fetch writes half, then fails
	fetched map[int]int
}

func newTestContent(t *testing.T, seed int64, layers int) (*Plan, *testContent) {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	c := &testContent{small: 5, failAt: map[int]bool{}, fetched: map[int]int{}}
	names := []string{"oci-layout", "index.json", "relocate-toc.json"}
	c.data = [][]byte{[]byte(`{"imageLayoutVersion":"1.0.0"}`), []byte(`{"index":1}`), []byte(fmt.Sprintf(`{"toc":%d}`, seed))}
	add := func(size int) {
		b := make([]byte, size)
		r.Read(b)
		names = append(names, fmt.Sprintf("blobs/sha256/%x", sha256.Sum256(b)))
		c.data = append(c.data, b)
	}
	add(300) // a manifest
	add(700) // a config
	for i := 0; i < layers; i++ {
		add(20<<10 + r.Intn(300<<10))
	}
	sizes := make([]int64, len(names))
	for i, d := range c.data {
		sizes[i] = int64(len(d))
	}
	plan, err := NewPlan(names, sizes)
	if err != nil {
		t.Fatal(err)
	}
	return plan, c
}

func (c *testContent) Data(i int) []byte {
	if i < c.small {
		return c.data[i]
	}
	return nil
}

func (c *testContent) Fetch(ctx context.Context, i int, w io.Writer) error {
	c.mu.Lock()
	c.fetched[i]++
	fail := c.failAt[i]
	c.mu.Unlock()
	if fail {
		w.Write(c.data[i][:len(c.data[i])/2])
		return errors.New("network down")
	}
	_, err := w.Write(c.data[i])
	return err
}

// whole is the archive written in one run.
func whole(t *testing.T, plan *Plan, c Content, comp Compression) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteStream(context.Background(), &b, comp, plan, c); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writePartial(t *testing.T, path string, plan *Plan, c Content, comp Compression, key string) (*Partial, error) {
	t.Helper()
	p, err := OpenPartial(context.Background(), path, plan, c, PartialOptions{Compression: comp, Key: key, Jobs: 4})
	if err != nil {
		t.Fatal(err)
	}
	return p, p.Write(context.Background())
}

// A run that fails keeps what is complete; the next run reuses it, checked,
// fetches only the rest, and the archive is the one a single run writes.
func TestPartialResumesByteIdentical(t *testing.T) {
	for _, comp := range []Compression{None, Zstd, Gzip} {
		t.Run(string(comp), func(t *testing.T) {
			plan, c := newTestContent(t, 1, 12)
			want := whole(t, plan, c, comp)
			path := filepath.Join(t.TempDir(), "site.tar")
			c.failAt[9] = true
			p, err := writePartial(t, path, plan, c, comp, "k1")
			if err == nil || !strings.Contains(err.Error(), "network down") {
				t.Fatalf("first run: %v", err)
			}
			kept := p.Abandon()
			if kept == nil || kept.Layers == 0 {
				t.Fatalf("nothing kept after a failure: %+v", kept)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("the archive appeared although the export failed: %v", err)
			}
			c.failAt = map[int]bool{}
			c.fetched = map[int]int{}
			p, err = writePartial(t, path, plan, c, comp, "k1")
			if err != nil {
				t.Fatal(err)
			}
			n, _ := p.Reused()
			if n == 0 {
				t.Fatal("nothing reused")
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, want) {
				t.Fatalf("resumed archive differs from a single run's (%d vs %d bytes)", len(got), len(want))
			}
			if len(c.fetched) >= len(plan.Entries)-c.small {
				t.Errorf("the second run fetched every layer again (%d)", len(c.fetched))
			}
			partial, journal := PartialPaths(path)
			for _, f := range []string{partial, journal} {
				if _, err := os.Stat(f); !os.IsNotExist(err) {
					t.Errorf("%s left after the export completed", f)
				}
			}
		})
	}
}

// kill leaves a partial as SIGKILL would: files as they are, journal as
// far as the last sync.
func kill(p *Partial) {
	p.f.Close()
	p.j.Close()
}

// What the journal lists is checked, never trusted: a layer damaged on
// disk is fetched again, a damaged frame cuts the compressed partial there.
func TestPartialChecksWhatItReuses(t *testing.T) {
	for _, comp := range []Compression{None, Zstd} {
		t.Run(string(comp), func(t *testing.T) {
			plan, c := newTestContent(t, 2, 8)
			want := whole(t, plan, c, comp)
			path := filepath.Join(t.TempDir(), "site.tar")
			c.failAt[11] = true
			p, _ := writePartial(t, path, plan, c, comp, "k")
			p.Sync()
			kill(p)
			partial, _ := PartialPaths(path)
			b, _ := os.ReadFile(partial)
			// Damage the content of the layer at entry 7 (its frame, compressed).
			off := plan.Entries[7].Offset + 100
			if comp != None {
				_, recs, _ := readJournal(p.journal)
				for k, r := range recs {
					if r.Entry == 7 {
						off = recs[k-1].End + (r.End-recs[k-1].End)/2
					}
				}
			}
			b[off] ^= 0xff
			os.WriteFile(partial, b, 0o644)
			c.failAt = map[int]bool{}
			c.fetched = map[int]int{}
			p, err := writePartial(t, path, plan, c, comp, "k")
			if err != nil {
				t.Fatal(err)
			}
			if c.fetched[7] != 1 {
				t.Errorf("the damaged layer was not fetched again (%d)", c.fetched[7])
			}
			if c.fetched[5] != 0 {
				t.Errorf("an intact layer before it was fetched again")
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
				t.Fatal("resumed archive differs from a single run's")
			}
		})
	}
}

// A partial of another plan is stale: removed, and the export starts over.
func TestPartialOfAnotherPlanStartsOver(t *testing.T) {
	plan, c := newTestContent(t, 3, 6)
	path := filepath.Join(t.TempDir(), "site.tar")
	c.failAt[8] = true
	p, _ := writePartial(t, path, plan, c, None, "monday")
	if p.Abandon() == nil {
		t.Fatal("nothing kept")
	}
	plan2, c2 := newTestContent(t, 4, 6)
	p, err := writePartial(t, path, plan2, c2, None, "tuesday")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := p.Reused(); n != 0 {
		t.Fatalf("reused %d entries of another plan", n)
	}
	p.Commit()
	if got, want := mustRead(t, path), whole(t, plan2, c2, None); !bytes.Equal(got, want) {
		t.Fatal("archive differs")
	}
}

// Two exports of one archive at once: the second is refused, not mixed in.
func TestPartialBusy(t *testing.T) {
	plan, c := newTestContent(t, 5, 2)
	path := filepath.Join(t.TempDir(), "site.tar")
	p, err := OpenPartial(context.Background(), path, plan, c, PartialOptions{Compression: None, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abandon()
	_, err = OpenPartial(context.Background(), path, plan, c, PartialOptions{Compression: None, Key: "k"})
	if !errors.Is(err, ErrPartialBusy) || !strings.Contains(err.Error(), ".site.tar.relocate-partial is locked") {
		t.Fatalf("second export: %v", err)
	}
}

// A failure before anything complete leaves nothing behind.
func TestPartialNothingToKeep(t *testing.T) {
	plan, c := newTestContent(t, 6, 2)
	dir := t.TempDir()
	c.failAt[5], c.failAt[6] = true, true
	p, err := writePartial(t, filepath.Join(dir, "site.tar.zst"), plan, c, Zstd, "k")
	if err == nil {
		t.Fatal("no failure")
	}
	if kept := p.Abandon(); kept != nil {
		t.Fatalf("kept %+v", kept)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A compressed archive is frames that decode as one stream, the same bytes
// as the uncompressed archive.
func TestFramesDecodeAsOneStream(t *testing.T) {
	plan, c := newTestContent(t, 7, 4)
	plain := whole(t, plan, c, None)
	for _, comp := range []Compression{Zstd, Gzip} {
		r, err := Open(bytes.NewReader(whole(t, plan, c, comp)), Options{File: func(string) bool { return true }, Dir: LayoutDirs})
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		n := 0
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", comp, err)
			}
			io.Copy(&got, r)
			if e.Name != plan.Entries[n].Name {
				t.Fatalf("%s: entry %d is %s", comp, n, e.Name)
			}
			n++
		}
		var want bytes.Buffer
		for i := range plan.Entries {
			want.Write(c.data[i])
		}
		if n != len(plan.Entries) || !bytes.Equal(got.Bytes(), want.Bytes()) || len(plain) != int(plan.Size) {
			t.Fatalf("%s: %d entries decoded", comp, n)
		}
	}
}
