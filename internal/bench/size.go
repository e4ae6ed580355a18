package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteSize is a flag value accepting "16777216" or "16MiB" (also KiB, GiB).
type byteSize int64

// sizeUnits is ordered largest first, so String picks the largest exact unit.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
	{"B", 1},
}

func (s *byteSize) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = byteSize(n)
	return nil
}

func (s *byteSize) String() string {
	if s == nil {
		return "0"
	}
	n := int64(*s)
	for _, u := range sizeUnits[:3] {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// parseSize reads a byte count with an optional binary-unit suffix.
func parseSize(v string) (int64, error) {
	lower := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(lower, strings.ToLower(u.suffix)); ok {
			lower, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(lower, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want bytes or a number with KiB, MiB or GiB", v)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: too large", v)
	}
	return n * mult, nil
}

// mib formats bytes as MiB for the report.
func mib(n int64) float64 { return float64(n) / (1 << 20) }

// mbps is throughput in MB/s (10^6 bytes per second), the unit the report uses.
func mbps(bytes int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / secs
}
