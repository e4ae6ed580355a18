package notary

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNotary serves files the way notary-server does: by role name, by
// version for roots, and by checksum whatever the role in the request.
func fakeNotary(t *testing.T, gun string, files map[string][]byte, override func(name string, w http.ResponseWriter) bool) *httptest.Server {
	t.Helper()
	byHash := map[string][]byte{}
	for _, data := range files {
		sum := sha256.Sum256(data)
		byHash[hex.EncodeToString(sum[:])] = data
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/v2/"+gun+"/_trust/tuf/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		if override != nil && override(name, w) {
			return
		}
		if data, ok := files[RoleFile(strings.TrimSuffix(name, ".json"))]; ok && !strings.Contains(name, "root.json") {
			w.Write(data)
			return
		}
		if data, ok := files[name]; ok {
			w.Write(data)
			return
		}
		if parts := strings.Split(name, "."); len(parts) >= 3 {
			if data, ok := byHash[parts[len(parts)-2]]; ok {
				w.Write(data)
				return
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fixtureFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	paths, _ := filepath.Glob("testdata/notary-0.7.0/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = data
	}
	return files
}

func TestCollect(t *testing.T) {
	const gun = "registry.example:5000/fixture/app"
	files := fixtureFiles(t)
	endless := func(w http.ResponseWriter) {
		w.Write([]byte(`{"signed":{"_type":"Timestamp","padding":"`))
		io.Copy(w, io.LimitReader(zeros{}, MaxTimestampSize+1)) // as if endless: the limit must cut it
	}
	for _, c := range []struct {
		name     string
		override func(name string, w http.ResponseWriter) bool
		err      error
	}{
		{name: "whole chain"},
		{name: "endless timestamp", err: ErrTooLarge, override: func(name string, w http.ResponseWriter) bool {
			if name == "timestamp.json" {
				endless(w)
				return true
			}
			return false
		}},
		{name: "snapshot by checksum is other data", err: ErrHashMismatch, override: func(name string, w http.ResponseWriter) bool {
			if strings.HasPrefix(name, "snapshot.") {
				w.Write(bytes.Replace(files["snapshot.json"], []byte(`"version":5`), []byte(`"version":6`), 1))
				return true
			}
			return false
		}},
		{name: "delegation by checksum longer than listed", err: ErrTooLarge, override: func(name string, w http.ResponseWriter) bool {
			if strings.HasPrefix(name, "targets/releases.") {
				w.Write(files["root.json"])
				return true
			}
			return false
		}},
		{name: "timestamp is another role", err: ErrWrongType, override: func(name string, w http.ResponseWriter) bool {
			if name == "timestamp.json" {
				w.Write(files["targets.json"])
				return true
			}
			return false
		}},
		{name: "no roots", err: ErrMissing, override: func(name string, w http.ResponseWriter) bool {
			if strings.HasSuffix(name, "root.json") {
				http.Error(w, "no", http.StatusNotFound)
				return true
			}
			return false
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := fakeNotary(t, gun, files, c.override)
			chain, err := Collect(context.Background(), srv.Client(), srv.URL, gun)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Collect: %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(chain.Files) != len(files) {
				t.Fatalf("collected %d files, want %d", len(chain.Files), len(files))
			}
			for name, data := range files {
				if !bytes.Equal(chain.Files[name], data) {
					t.Errorf("%s differs from what the server holds", name)
				}
			}
			if len(chain.Roles) != 5 || chain.Roles[4].File != "targets%2Freleases.json" {
				t.Errorf("roles %+v", chain.Roles)
			}
		})
	}
	if _, err := Collect(context.Background(), nil, "ftp://x", gun); err == nil {
		t.Error("Collect accepted an ftp server URL")
	}
	if _, err := Collect(context.Background(), nil, "https://x", "../x"); err == nil {
		t.Error("Collect accepted GUN ../x")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}
