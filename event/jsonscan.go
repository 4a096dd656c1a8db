package event

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file is the JSON reader behind Decode. It validates a whole document with the grammar and limits of
// encoding/json (RFC 8259, nesting at most 10,000 deep), records where the values it needs are, and converts only
// those: no reflection, no maps, no copies of values that are never used. Its input has passed utf8.Valid.

// maxNestingDepth is encoding/json's limit: deeper documents are malformed there, so they are here.
const maxNestingDepth = 10000

// span locates one JSON value in the document: data[start:end]. A zero span (end == 0) means absent; no value ends
// at offset 0. escaped says whether a string token has escapes: one without is its own text, with no second look.
type span struct {
	start, end int
	escaped    bool
}

func (v span) present() bool { return v.end > 0 }

// scanner validates JSON over data from pos on. Its methods return false on a syntax error; the reason does not
// matter, every syntax error is ReasonMalformedJSON.
type scanner struct {
	data  []byte
	pos   int
	depth int

	// dataFields, if set, receives where the members of the outermost object's member "data" are, by their index
	// in dataFieldIndex, when data is an object (only its last occurrence's, as with every repeated key): Decode
	// reads them in the one pass that validates the document.
	dataFields *[numDataFields]span

	escaped bool // the last string token str read had escapes
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) && isSpace(s.data[s.pos]) {
		s.pos++
	}
}

// value validates the value at pos (after white space) and returns where it is.
func (s *scanner) value() (span, bool) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return span{}, false
	}
	start := s.pos
	var ok bool
	switch c := s.data[s.pos]; {
	case c == '{':
		ok = s.object(nil)
	case c == '[':
		ok = s.array()
	case c == '"':
		ok = s.str()
		return span{start, s.pos, s.escaped}, ok
	case c == 't':
		ok = s.literal("true")
	case c == 'f':
		ok = s.literal("false")
	case c == 'n':
		ok = s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		ok = s.number()
	}
	return span{start: start, end: s.pos}, ok
}

// object validates the object at pos and calls member, if not nil, with each member's key (the raw string
// token, quotes included) and value, in document order.
func (s *scanner) object(member func(key, value span)) bool {
	if s.depth++; s.depth > maxNestingDepth {
		return false
	}
	s.pos++ // '{'
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return true
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		key := span{start: s.pos}
		if !s.str() {
			return false
		}
		key.end, key.escaped = s.pos, s.escaped
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		var v span
		var ok bool
		if s.depth == 1 && s.dataFields != nil && text(s.data, key) == "data" {
			v, ok = s.dataValue()
		} else {
			v, ok = s.value()
		}
		if !ok {
			return false
		}
		if member != nil {
			member(key, v)
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// dataValue reads the value of the outermost object's member "data", as value does, and records the members of an
// object in dataFields.
func (s *scanner) dataValue() (span, bool) {
	*s.dataFields = [numDataFields]span{}
	if s.skipSpace(); s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return s.value()
	}
	start := s.pos
	ok := s.object(func(key, value span) {
		if i, ok := dataFieldsByName.get(text(s.data, key)); ok {
			s.dataFields[i] = value
		}
	})
	return span{start: start, end: s.pos}, ok
}

func (s *scanner) array() bool {
	if s.depth++; s.depth > maxNestingDepth {
		return false
	}
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return true
	}
	for {
		if _, ok := s.value(); !ok {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// plain marks the bytes a string token holds as they are: all but '"', '\\' and control characters. str skips runs
// of them in a tight loop: most strings of an event are plain from quote to quote.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// allPlain reports whether none of the eight bytes in x is '"', '\\' or a control character (the classic "has a zero
// byte" test: a byte that is one of them sets its high bit in the result; one that is not can only be flagged after
// a byte that is, and then the caller goes byte by byte anyway).
func allPlain(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(x-ones*0x20)&^x)&highs == 0
}

// str validates the string token at pos: no control characters, only JSON's escapes.
func (s *scanner) str() bool {
	d, i := s.data, s.pos+1 // after '"'
	s.escaped = false
	for {
		for i+8 <= len(d) && allPlain(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i >= len(d) {
			s.pos = i
			return false
		}
		switch c := d[i]; {
		case c == '"':
			s.pos = i + 1
			return true
		case c < 0x20:
			s.pos = i
			return false
		}
		i++ // '\\'
		s.escaped = true
		if i >= len(d) {
			s.pos = i
			return false
		}
		switch d[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if i+5 > len(d) || hex4(d[i+1:i+5]) < 0 {
				s.pos = i
				return false
			}
			i += 5
		default:
			s.pos = i
			return false
		}
	}
}

func (s *scanner) literal(word string) bool {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return false
	}
	s.pos += len(word)
	return true
}

// number validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; what follows it is the caller's business.
func (s *scanner) number() bool {
	d := s.data
	if d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.pos < len(d) && '1' <= d[s.pos] && d[s.pos] <= '9':
		s.digits()
	default:
		return false
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if !s.digits() {
			return false
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits consumes [0-9]+ and says whether there was at least one.
func (s *scanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// A value of a validated document, converted the way encoding/json converts it into a Go value.
type jsonValue []byte

func (v jsonValue) isNull() bool   { return string(v) == "null" }
func (v jsonValue) isString() bool { return len(v) > 0 && v[0] == '"' }
func (v jsonValue) isObject() bool { return len(v) > 0 && v[0] == '{' }
func (v jsonValue) isArray() bool  { return len(v) > 0 && v[0] == '[' }
func (v jsonValue) isNumber() bool {
	return len(v) > 0 && (v[0] == '-' || ('0' <= v[0] && v[0] <= '9'))
}

// text is the value of a string token (quotes included), escapes resolved as encoding/json resolves them: an
// unpaired surrogate becomes U+FFFD. It is not a copy: without escapes it is the document's own bytes, which is
// why Decode's events keep the document alive and the document must not change after Decode (copying every
// string of every event cost the worker a third of its decoding time and most of its garbage).
func (v jsonValue) text() string {
	u := v.unquoted()
	if len(u) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(u), len(u))
}

// text is the text of the string token at sp in data (text without looking for escapes when it has none).
func text(data []byte, sp span) string {
	if sp.escaped {
		return jsonValue(data[sp.start:sp.end]).text()
	}
	return unsafe.String(unsafe.SliceData(data[sp.start+1:]), sp.end-sp.start-2)
}

// equals says whether the string token v holds exactly s.
func (v jsonValue) equals(s string) bool { return string(v.unquoted()) == s }

// unquoted is the content of the string token v, escapes resolved; it shares v's memory when there are none.
func (v jsonValue) unquoted() []byte {
	body := v[1 : len(v)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return body
	}
	return unescape(body)
}

func unescape(body []byte) []byte {
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch body[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(body[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				// A pair is two escapes; anything else leaves the first one unpaired.
				if i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, hex4(body[i+2:])); dec != unicode.ReplacementChar {
						out = utf8.AppendRune(out, dec)
						i += 6
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, body[i+1])
		}
		i += 2
	}
	return out
}

// float is the value of a number token, or false when float64 cannot hold it (encoding/json rejects those too).
func (v jsonValue) float() (float64, bool) {
	f, err := strconv.ParseFloat(string(v), 64)
	return f, err == nil
}
