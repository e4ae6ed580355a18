package testtools

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindOrder(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	os.MkdirAll(cache, 0o755)
	write := func(p string) {
		t.Helper()
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("RELOCATE_TOOLS_DIR", cache)
	t.Setenv("PATH", dir)
	t.Setenv("RELOCATE_ORAS", "")

	if _, err := Find(Oras); err == nil {
		t.Fatal("found oras in an empty cache and PATH")
	}
	write(filepath.Join(dir, "oras"))
	if p, _ := Find(Oras); p != filepath.Join(dir, "oras") {
		t.Fatalf("PATH: got %q", p)
	}
	write(filepath.Join(cache, "oras"))
	if p, _ := Find(Oras); p != filepath.Join(cache, "oras") {
		t.Fatalf("cache must win over PATH: got %q", p)
	}
	override := filepath.Join(dir, "my-oras")
	write(override)
	t.Setenv("RELOCATE_ORAS", override)
	if p, _ := Find(Oras); p != override {
		t.Fatalf("env override must win: got %q", p)
	}
	t.Setenv("RELOCATE_ORAS", filepath.Join(dir, "missing"))
	if _, err := Find(Oras); err == nil {
		t.Fatal("a wrong override must be an error, not a fallback")
	}
}
