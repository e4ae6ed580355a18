package main

import (
	"strings"
	"testing"
)

func TestReorder(t *testing.T) {
	app := newApp(&env{})
	tests := []struct{ in, want string }{
		{"relocate import site.tar --to reg --plain-http", "relocate import --to reg --plain-http -- site.tar"},
		{"relocate import --to reg site.tar", "relocate import --to reg -- site.tar"},
		{"relocate import --to=reg site.tar --json", "relocate import --to=reg --json -- site.tar"},
		{"relocate verify - --json", "relocate verify --json -- -"},
		{"relocate export a:1 -o out.tar b:2 -j 3", "relocate export -o out.tar -j 3 -- a:1 b:2"},
		{"relocate export -o x -- -weird", "relocate export -o x -- -weird"},
		{"relocate help", "relocate help"},
		{"relocate", "relocate"},
	}
	for _, tc := range tests {
		if got := strings.Join(reorder(app, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("reorder(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
