// Package tartest crafts tar entries that archive/tar will not write: the
// GNU sparse forms (old GNU type 'S', PAX 0.0, 0.1 and 1.0), for tests of
// the readers that must refuse them.
package tartest

import (
	"fmt"
	"strconv"
)

const block = 512

// Header is a USTAR header block for an entry of this name, size and type.
func Header(name string, size int64, typeflag byte) []byte {
	b := make([]byte, block)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typeflag
	copy(b[257:265], "ustar\x0000")
	return checksum(b)
}

// checksum fills in a header's checksum field.
func checksum(b []byte) []byte {
	copy(b[148:156], "        ")
	var sum int
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// Pad appends zeros up to the next block boundary.
func Pad(b []byte) []byte {
	if r := len(b) % block; r != 0 {
		b = append(b, make([]byte, block-r)...)
	}
	return b
}

// Trailer is the end-of-archive marker.
func Trailer() []byte { return make([]byte, 2*block) }

// Record formats one PAX record, "length key=value\n".
func Record(key, value string) string {
	kv := key + "=" + value + "\n"
	n := len(kv) + 2
	for {
		r := strconv.Itoa(n) + " " + kv
		if len(r) == n {
			return r
		}
		n = len(r)
	}
}

// PAX is an extended header ('x') carrying records for the entry after it.
func PAX(records ...string) []byte {
	var data string
	for _, r := range records {
		data += r
	}
	return append(Header("PaxHeaders/entry", int64(len(data)), 'x'), Pad([]byte(data))...)
}

// Regular is a plain entry with its content.
func Regular(name string, data []byte) []byte {
	return append(Header(name, int64(len(data)), '0'), Pad(append([]byte(nil), data...))...)
}

// Form is one way of storing a sparse file.
type Form string

const (
	PAX00  Form = "PAX 0.0" // GNU.sparse.offset/numbytes records
	PAX01  Form = "PAX 0.1" // a GNU.sparse.map record
	PAX10  Form = "PAX 1.0" // the map at the start of the content
	GNUOld Form = "GNU 'S'" // the old GNU type, the map in the header
)

// Forms lists every sparse form.
var Forms = []Form{PAX00, PAX01, PAX10, GNUOld}

// Sparse is an entry named name that stores data and, once expanded,
// holds data followed by zeros up to realSize bytes.
func Sparse(form Form, name string, data []byte, realSize int64) []byte {
	n := strconv.Itoa(len(data))
	size := strconv.FormatInt(realSize, 10)
	switch form {
	case PAX00:
		pax := PAX(Record("GNU.sparse.size", size), Record("GNU.sparse.numblocks", "1"),
			Record("GNU.sparse.offset", "0"), Record("GNU.sparse.numbytes", n))
		return append(pax, Regular(name, data)...)
	case PAX01:
		pax := PAX(Record("GNU.sparse.size", size), Record("GNU.sparse.numblocks", "1"), Record("GNU.sparse.map", "0,"+n))
		return append(pax, Regular(name, data)...)
	case PAX10:
		pax := PAX(Record("GNU.sparse.major", "1"), Record("GNU.sparse.minor", "0"),
			Record("GNU.sparse.name", name), Record("GNU.sparse.realsize", size))
		content := append(Pad([]byte("1\n0\n"+n+"\n")), data...)
		return append(pax, Regular("GNUSparseFile.0/entry", content)...)
	case GNUOld:
		h := Header(name, int64(len(data)), 'S')
		copy(h[257:265], "ustar  \x00") // the GNU magic: type 'S' is GNU's
		copy(h[386:398], fmt.Sprintf("%011o\x00", 0))
		copy(h[398:410], fmt.Sprintf("%011o\x00", len(data)))
		copy(h[483:495], fmt.Sprintf("%011o\x00", realSize))
		return append(checksum(h), Pad(append([]byte(nil), data...))...)
	}
	panic("unknown sparse form " + string(form))
}
