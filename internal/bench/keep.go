package main

import (
	"bytes"
	"os"
)

// keptMarker starts the part of the report that a run keeps as it is:
// measurements that come from their own Go benchmarks (signature
// verification per image), not from this program.
const keptMarker = "<!-- kept across runs:"

// keptSection is that part of the report at path, or "".
func keptSection(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if i := bytes.Index(b, []byte(keptMarker)); i >= 0 {
		return "\n" + string(b[i:])
	}
	return ""
}
