package intoto

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

// Link names arrive as TUF target names: attacker-influenced until TUF
// verified them, and even then names, never paths.
func TestLinkNames(t *testing.T) {
	const sum = "in-toto-metadata/0123456789abcdef"
	deep := strings.Repeat("s.0382e29c/", MaxSublayoutDepth)
	tests := []struct {
		name    string
		names   []string
		want    map[string]string // relative names, when accepted
		wantErr string
	}{
		{name: "root links and a sublayout's", names: []string{
			sum + "/supply.0382e29c/package.130a575d.link",
			sum + "/supply.0382e29c.link",
			sum + "/supply.0382e29c/fetch.fecf4785.link",
			sum + "/supply.0382e29c.link", // listed twice
		}, want: map[string]string{
			sum + "/supply.0382e29c.link":                  "supply.0382e29c.link",
			sum + "/supply.0382e29c/fetch.fecf4785.link":   "supply.0382e29c/fetch.fecf4785.link",
			sum + "/supply.0382e29c/package.130a575d.link": "supply.0382e29c/package.130a575d.link",
		}},
		{name: "no directory", names: []string{"build.3b3e8310.link"},
			want: map[string]string{"build.3b3e8310.link": "build.3b3e8310.link"}},
		{name: "step names with dots", names: []string{sum + "/a.b.3b3e8310.link"},
			want: map[string]string{sum + "/a.b.3b3e8310.link": "a.b.3b3e8310.link"}},
		{name: "nested to the bound", names: []string{sum + "/s.0382e29c.link", sum + "/" + deep + "x.12345678.link"},
			want: map[string]string{sum + "/s.0382e29c.link": "s.0382e29c.link", sum + "/" + deep + "x.12345678.link": deep + "x.12345678.link"}},
		{name: "none", names: nil, want: map[string]string{}},

		{name: "dot-dot inside a sublayout directory", names: []string{sum + "/supply.0382e29c.link", sum + "/supply.0382e29c/../package.130a575d.link"},
			wantErr: `link ` + sum + `/supply.0382e29c/../package.130a575d.link: "` + sum + `/supply.0382e29c/../package.130a575d.link" has an empty, "." or ".." component`},
		{name: "dot-dot leaving the link directory", names: []string{sum + "/build.3b3e8310.link", sum + "/../build.3b3e8310.link"},
			wantErr: `/../build.3b3e8310.link" has an empty, "." or ".." component`},
		{name: "dot-dot as the link directory", names: []string{"../build.3b3e8310.link"},
			wantErr: `"../build.3b3e8310.link" has an empty, "." or ".." component`},
		{name: "dot component", names: []string{sum + "/./build.3b3e8310.link"}, wantErr: `has an empty, "." or ".." component`},
		{name: "empty component", names: []string{sum + "//build.3b3e8310.link"}, wantErr: `has an empty, "." or ".." component`},
		{name: "absolute", names: []string{"/etc/build.3b3e8310.link"}, wantErr: `"/etc/build.3b3e8310.link" is absolute`},
		{name: "backslash", names: []string{sum + `/supply.0382e29c\..\build.3b3e8310.link`}, wantErr: "backslash or a control character"},
		{name: "NUL", names: []string{sum + "/build.3b3e8310.link\x00"}, wantErr: "backslash or a control character"},
		{name: "outside the link directory", names: []string{sum + "/build.3b3e8310.link", "in-toto-metadata/elsewhere/package.1602d381.link"},
			wantErr: "link in-toto-metadata/elsewhere/package.1602d381.link: not under " + sum + ", the link directory (that of " + sum + "/build.3b3e8310.link)"},
		{name: "root links in two directories", names: []string{sum + "/build.3b3e8310.link", "elsewhere/package.1602d381.link"},
			wantErr: "link " + sum + "/build.3b3e8310.link: not under elsewhere, the link directory (that of elsewhere/package.1602d381.link)"},
		{name: "a directory that is not a sublayout's", names: []string{sum + "/build.3b3e8310.link", sum + "/sub/package.1602d381.link"},
			wantErr: `"sub" is not <step>.<keyid8>`},
		{name: "short key id", names: []string{sum + "/build.3b3e831.link"}, wantErr: `"build.3b3e831" is not <step>.<keyid8>`},
		{name: "upper-case key id", names: []string{sum + "/build.3B3E8310.link"}, wantErr: `"build.3B3E8310" is not <step>.<keyid8>`},
		{name: "no step name", names: []string{sum + "/.3b3e8310.link"}, wantErr: `".3b3e8310" is not <step>.<keyid8>`},
		{name: "deeper than the bound", names: []string{sum + "/s.0382e29c.link", sum + "/" + deep + "s.0382e29c/x.12345678.link"},
			wantErr: "nested 9 sublayouts deep, at most 8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LinkNames(tc.names)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want ErrVerification containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
