package bundle

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// A PAX sparse entry expands to as many zeros as it claims (here 1 TiB from
// a few bytes): it is refused before a byte of it is read.
func TestOpenThickRefusesSparse(t *testing.T) {
	records := ""
	for _, kv := range []string{"GNU.sparse.numblocks=1", "GNU.sparse.map=0,0", "GNU.sparse.size=1099511627776"} {
		records += paxRecord(kv)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// The PAX header, written as a regular file and retyped: archive/tar
	// will not write GNU.sparse records itself.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeaders/blob", Size: int64(len(records)), Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(records))
	blob := "artifacts/layout/blobs/sha256/" + strings.Repeat("a", 64)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blob, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	var sum int
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))

	_, err := OpenThick(bytes.NewReader(b), nil)
	if err == nil || !strings.Contains(err.Error(), "sparse files are refused") {
		t.Fatalf("got %v, want a refusal of the sparse entry", err)
	}
}

// paxRecord formats one "length key=value\n" record.
func paxRecord(kv string) string {
	n := len(kv) + 3
	for {
		r := fmt.Sprintf("%d %s\n", n, kv)
		if len(r) == n {
			return r
		}
		n = len(r)
	}
}
