package main

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"16777216": 16 << 20,
		"16MiB":    16 << 20,
		"16mib":    16 << 20,
		"512KiB":   512 << 10,
		"1GiB":     1 << 30,
		"100B":     100,
		" 2 MiB ":  2 << 20,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "16MB", "9999999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for n, want := range map[int64]string{16 << 20: "16MiB", 1 << 30: "1GiB", 1536: "1536", 3 << 10: "3KiB", 100: "100"} {
		s := byteSize(n)
		if got := s.String(); got != want {
			t.Errorf("byteSize(%d).String() = %q, want %q", n, got, want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
