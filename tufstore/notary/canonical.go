package notary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting; Notary metadata is at most six levels deep.
const maxJSONDepth = 64

// canonicalJSON re-encodes one JSON value in the canonical form Notary signs
// (docker/go canonical/json): object keys sorted bytewise, no insignificant
// whitespace, strings escaping only '"' and '\' (plus U+2028 and U+2029, as
// that encoder does), integers only.
//
// Signatures are checked over this re-encoding rather than over the bytes as
// served, and every field the verifier acts on is decoded from it, so what is
// trusted is exactly what was signed. Duplicate keys are refused because two
// parsers could disagree on which one counts.
func canonicalJSON(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var buf bytes.Buffer
	if err := canonicalValue(dec, &buf, 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("canonical json: data after the value")
	}
	return buf.Bytes(), nil
}

func canonicalValue(dec *json.Decoder, buf *bytes.Buffer, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("canonical json: nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("canonical json: %w", err)
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return canonicalObject(dec, buf, depth)
		case '[':
			buf.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					buf.WriteByte(',')
				}
				if err := canonicalValue(dec, buf, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return fmt.Errorf("canonical json: %w", err)
			}
			buf.WriteByte(']')
			return nil
		}
		return fmt.Errorf("canonical json: unexpected %v", v)
	case string:
		writeCanonicalString(buf, v)
	case json.Number:
		if !isCanonicalInt(string(v)) {
			return fmt.Errorf("canonical json: number %s is not an integer", v)
		}
		buf.WriteString(string(v))
	case bool:
		if v {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	default:
		return fmt.Errorf("canonical json: unexpected token %T", tok)
	}
	return nil
}

func canonicalObject(dec *json.Decoder, buf *bytes.Buffer, depth int) error {
	type member struct {
		key   string
		value []byte
	}
	var members []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("canonical json: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("canonical json: object key %v is not a string", tok)
		}
		if seen[key] {
			return fmt.Errorf("canonical json: duplicate key %q", key)
		}
		seen[key] = true
		var vb bytes.Buffer
		if err := canonicalValue(dec, &vb, depth+1); err != nil {
			return err
		}
		members = append(members, member{key, vb.Bytes()})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return fmt.Errorf("canonical json: %w", err)
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	buf.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeCanonicalString(buf, m.key)
		buf.WriteByte(':')
		buf.Write(m.value)
	}
	buf.WriteByte('}')
	return nil
}

// isCanonicalInt reports whether s is an integer literal without a sign on
// zero, leading zeros, fraction or exponent: canonical JSON has no floats.
func isCanonicalInt(s string) bool {
	d := strings.TrimPrefix(s, "-")
	if d == "" || (d[0] == '0' && (len(d) > 1 || len(s) > 1)) {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

func writeCanonicalString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\' || r == '"':
			buf.WriteByte('\\')
			buf.WriteByte(byte(r))
		case r == '\u2028' || r == '\u2029':
			fmt.Fprintf(buf, `\u%04x`, r)
		case r == utf8.RuneError && size == 1:
			buf.WriteString(`\ufffd`)
		default:
			buf.WriteString(s[i : i+size])
		}
		i += size
	}
	buf.WriteByte('"')
}
