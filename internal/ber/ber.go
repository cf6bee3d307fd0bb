package ber

import (
	"errors"
	"fmt"
	"math"
)

// MaxDepth bounds the nesting of constructed elements ToDER and ToIndefinite accept.
// CMS envelopes nest about a dozen levels deep; the bound keeps hostile input from
// exhausting the stack.
const MaxDepth = 64

// ErrMalformed is wrapped by every error this package returns.
var ErrMalformed = errors.New("ber: malformed encoding")

// Tag classes (the top two bits of the identifier octet).
const (
	classUniversal = 0
)

// header is one parsed identifier-and-length prefix.
type header struct {
	class       byte // 0 universal, 1 application, 2 context-specific, 3 private
	constructed bool
	tag         uint32
	length      int  // content length; -1 when indefinite
	size        int  // bytes taken by the identifier and length octets
	minimal     bool // identifier and length are in DER's minimal form
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// parseHeader reads the identifier and length octets at the start of b. It checks
// that a definite length fits in b, so callers may slice without further checks.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < 2 {
		return h, malformed("truncated header")
	}
	h.minimal = true
	h.class = b[0] >> 6
	h.constructed = b[0]&0x20 != 0
	i := 1
	if t := b[0] & 0x1f; t != 0x1f {
		h.tag = uint32(t)
	} else {
		// High tag number form: base-128, most significant group first.
		if b[i] == 0x80 {
			return h, malformed("tag number with leading zero group")
		}
		for n := 0; ; n++ {
			if i >= len(b) {
				return h, malformed("truncated tag number")
			}
			if n == 4 {
				return h, malformed("tag number too large")
			}
			c := b[i]
			i++
			h.tag = h.tag<<7 | uint32(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
		if h.tag < 0x1f {
			h.minimal = false // should have used the low tag number form
		}
	}
	if i >= len(b) {
		return h, malformed("truncated length")
	}
	l := b[i]
	i++
	switch {
	case l < 0x80:
		h.length = int(l)
	case l == 0x80:
		if !h.constructed {
			return h, malformed("indefinite length on a primitive element")
		}
		h.length = -1
	case l == 0xff:
		return h, malformed("reserved length octet 0xff")
	default:
		n := int(l & 0x7f)
		if n > len(b)-i {
			return h, malformed("truncated length")
		}
		v := 0
		for _, c := range b[i : i+n] {
			if v > (math.MaxInt32 >> 8) {
				return h, malformed("length too large")
			}
			v = v<<8 | int(c)
		}
		// DER: no leading zero octet, and the long form only from 128 up.
		if b[i] == 0 || v < 0x80 {
			h.minimal = false
		}
		i += n
		h.length = v
	}
	h.size = i
	if h.length > len(b)-i {
		return h, malformed("length %d exceeds the %d bytes available", h.length, len(b)-i)
	}
	return h, nil
}

// isString reports whether a universal tag names a string type that BER lets a
// sender split into a constructed sequence of chunks (X.690 §8.7, §8.6, §8.23).
func isString(tag uint32) bool {
	switch tag {
	case 3, // BIT STRING
		4,                  // OCTET STRING
		7,                  // ObjectDescriptor
		12,                 // UTF8String
		18, 19, 20, 21, 22, // Numeric, Printable, T61, Videotex, IA5
		23, 24, // UTCTime, GeneralizedTime
		25, 26, 27, 28, // Graphic, Visible, General, Universal
		30: // BMPString
		return true
	}
	return false
}

// isEOC reports whether b starts with an end-of-contents marker.
func isEOC(b []byte) bool { return len(b) >= 2 && b[0] == 0 && b[1] == 0 }

// ToDER rewrites one BER element into definite-length form with minimal identifier
// and length octets, and turns every constructed universal string (OCTET STRING, BIT
// STRING, the character strings) into the equivalent primitive one. The result is
// what encoding/asn1 expects; SET OF ordering and primitive contents are left as
// they are.
//
// b must hold exactly one element: trailing bytes, truncation, nesting deeper than
// MaxDepth and any other malformation are errors wrapping ErrMalformed. ToDER never
// panics. When b needs no change it is returned as is (the result aliases b) after a
// scan that does not allocate.
func ToDER(b []byte) ([]byte, error) {
	if n, ok := scanDER(b, 0); ok && n == len(b) {
		return b, nil
	}
	out, n, err := convert(nil, b, 0)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, malformed("%d trailing bytes after the element", len(b)-n)
	}
	return out, nil
}

// scanDER walks the element at the start of b and reports its encoded size, and
// whether it is already in the form ToDER produces. It never allocates; on anything
// unexpected it reports false and lets convert produce the error.
func scanDER(b []byte, depth int) (int, bool) {
	h, err := parseHeader(b)
	if err != nil || !h.minimal || h.length < 0 {
		return 0, false
	}
	if h.class == classUniversal && h.tag == 0 {
		return 0, false // end-of-contents outside an indefinite-length element
	}
	end := h.size + h.length
	if !h.constructed {
		return end, true
	}
	if depth >= MaxDepth || (h.class == classUniversal && isString(h.tag)) {
		return 0, false
	}
	for off := h.size; off < end; {
		n, ok := scanDER(b[off:end], depth+1)
		if !ok {
			return 0, false
		}
		off += n
	}
	return end, true
}

// convert appends the DER form of the element at the start of b to dst and reports
// how many bytes of b the element took.
func convert(dst, b []byte, depth int) ([]byte, int, error) {
	h, err := parseHeader(b)
	if err != nil {
		return nil, 0, err
	}
	if h.class == classUniversal && h.tag == 0 {
		return nil, 0, malformed("unexpected end-of-contents or universal tag 0")
	}
	if !h.constructed {
		end := h.size + h.length
		dst = appendHeader(dst, h.class, false, h.tag, h.length)
		return append(dst, b[h.size:end]...), end, nil
	}
	if depth >= MaxDepth {
		return nil, 0, malformed("nesting deeper than %d", MaxDepth)
	}
	content, n, err := contents(b, h)
	if err != nil {
		return nil, 0, err
	}
	if h.class == classUniversal && isString(h.tag) {
		var s []byte
		var unused byte
		if h.tag == 3 {
			s, unused, err = flattenBits(nil, content, depth+1)
		} else {
			s, err = flattenString(nil, content, h.tag, depth+1)
		}
		if err != nil {
			return nil, 0, err
		}
		if h.tag == 3 {
			dst = appendHeader(dst, h.class, false, h.tag, len(s)+1)
			dst = append(dst, unused)
		} else {
			dst = appendHeader(dst, h.class, false, h.tag, len(s))
		}
		return append(dst, s...), n, nil
	}
	var body []byte
	for off := 0; off < len(content); {
		var m int
		body, m, err = convert(body, content[off:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		off += m
	}
	dst = appendHeader(dst, h.class, true, h.tag, len(body))
	return append(dst, body...), n, nil
}

// contents returns the raw content octets of the constructed element at the start
// of b (for an indefinite length: everything up to the matching end-of-contents
// marker, which is found by walking the children) and the element's total size.
func contents(b []byte, h header) ([]byte, int, error) {
	if h.length >= 0 {
		return b[h.size : h.size+h.length], h.size + h.length, nil
	}
	off := h.size
	for {
		if len(b)-off < 2 {
			return nil, 0, malformed("missing end-of-contents")
		}
		if isEOC(b[off:]) {
			return b[h.size:off], off + 2, nil
		}
		n, err := skip(b[off:], 0)
		if err != nil {
			return nil, 0, err
		}
		off += n
	}
}

// skip reports the encoded size of the element at the start of b without
// converting it. depth counts indefinite-length levels, the only ones skip must
// walk into.
func skip(b []byte, depth int) (int, error) {
	h, err := parseHeader(b)
	if err != nil {
		return 0, err
	}
	if h.class == classUniversal && h.tag == 0 {
		return 0, malformed("unexpected end-of-contents or universal tag 0")
	}
	if h.length >= 0 {
		return h.size + h.length, nil
	}
	if depth >= MaxDepth {
		return 0, malformed("nesting deeper than %d", MaxDepth)
	}
	off := h.size
	for {
		if len(b)-off < 2 {
			return 0, malformed("missing end-of-contents")
		}
		if isEOC(b[off:]) {
			return off + 2, nil
		}
		n, err := skip(b[off:], depth+1)
		if err != nil {
			return 0, err
		}
		off += n
	}
}

// flattenString appends the concatenated chunks of a constructed string's content
// to dst. Every chunk must carry the same universal tag (X.690 §8.7.3.2).
func flattenString(dst, content []byte, tag uint32, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, malformed("nesting deeper than %d", MaxDepth)
	}
	for off := 0; off < len(content); {
		h, err := parseHeader(content[off:])
		if err != nil {
			return nil, err
		}
		if h.class != classUniversal || h.tag != tag {
			return nil, malformed("chunk of a constructed string type %d has class %d tag %d", tag, h.class, h.tag)
		}
		inner, n, err := contents(content[off:], h)
		if err != nil {
			return nil, err
		}
		if h.constructed {
			if dst, err = flattenString(dst, inner, tag, depth+1); err != nil {
				return nil, err
			}
		} else {
			dst = append(dst, inner...)
		}
		off += n
	}
	return dst, nil
}

// flattenBits is flattenString for BIT STRING, whose primitive chunks each start
// with an unused-bits octet; only the last chunk may leave bits unused (X.690
// §8.6.4). It returns the data octets and the final unused-bit count.
func flattenBits(dst, content []byte, depth int) ([]byte, byte, error) {
	if depth > MaxDepth {
		return nil, 0, malformed("nesting deeper than %d", MaxDepth)
	}
	var unused byte
	for off := 0; off < len(content); {
		if unused != 0 {
			return nil, 0, malformed("BIT STRING chunk with unused bits is not the last")
		}
		h, err := parseHeader(content[off:])
		if err != nil {
			return nil, 0, err
		}
		if h.class != classUniversal || h.tag != 3 {
			return nil, 0, malformed("chunk of a constructed BIT STRING has class %d tag %d", h.class, h.tag)
		}
		inner, n, err := contents(content[off:], h)
		if err != nil {
			return nil, 0, err
		}
		if h.constructed {
			if dst, unused, err = flattenBits(dst, inner, depth+1); err != nil {
				return nil, 0, err
			}
		} else {
			if len(inner) == 0 {
				return nil, 0, malformed("BIT STRING chunk without unused-bits octet")
			}
			unused = inner[0]
			if unused > 7 || (unused != 0 && len(inner) == 1) {
				return nil, 0, malformed("BIT STRING chunk with invalid unused-bits octet %d", unused)
			}
			dst = append(dst, inner[1:]...)
		}
		off += n
	}
	return dst, unused, nil
}

// appendHeader appends minimal DER identifier and definite length octets.
func appendHeader(dst []byte, class byte, constructed bool, tag uint32, length int) []byte {
	id := class << 6
	if constructed {
		id |= 0x20
	}
	if tag < 0x1f {
		dst = append(dst, id|byte(tag))
	} else {
		dst = append(dst, id|0x1f)
		var groups [5]byte
		n := 0
		for t := tag; ; t >>= 7 {
			groups[n] = byte(t & 0x7f)
			n++
			if t < 0x80 {
				break
			}
		}
		for i := n - 1; i >= 0; i-- {
			c := groups[i]
			if i > 0 {
				c |= 0x80
			}
			dst = append(dst, c)
		}
	}
	return appendLength(dst, length)
}

func appendLength(dst []byte, length int) []byte {
	if length < 0x80 {
		return append(dst, byte(length)) //nolint:gosec // G115: length < 0x80 here; lengths come from len() and are never negative
	}
	n := 0
	for l := length; l > 0; l >>= 8 {
		n++
	}
	dst = append(dst, 0x80|byte(n))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(length>>(8*i))) //nolint:gosec // G115: taking one byte of the big-endian length is the point
	}
	return dst
}

// ToIndefinite re-encodes a definite-length element (typically DER) so that every
// constructed element, at every depth, uses the indefinite-length form terminated
// by end-of-contents, as streaming BER encoders (openssl cms -stream, Apple) write.
// Primitive elements are copied unchanged. It exists to produce BER test vectors:
// for DER x, ToDER(ToIndefinite(x)) returns x.
func ToIndefinite(der []byte) ([]byte, error) {
	out, n, err := indefinite(nil, der, 0)
	if err != nil {
		return nil, err
	}
	if n != len(der) {
		return nil, malformed("%d trailing bytes after the element", len(der)-n)
	}
	return out, nil
}

func indefinite(dst, b []byte, depth int) ([]byte, int, error) {
	h, err := parseHeader(b)
	if err != nil {
		return nil, 0, err
	}
	if h.length < 0 {
		return nil, 0, malformed("input already uses an indefinite length")
	}
	if h.class == classUniversal && h.tag == 0 {
		return nil, 0, malformed("universal tag 0")
	}
	end := h.size + h.length
	if !h.constructed {
		return append(dst, b[:end]...), end, nil
	}
	if depth >= MaxDepth {
		return nil, 0, malformed("nesting deeper than %d", MaxDepth)
	}
	// Keep the identifier octets as they are; replace the length with 0x80.
	idLen := 1
	if b[0]&0x1f == 0x1f {
		for idLen < len(b) && b[idLen]&0x80 != 0 {
			idLen++
		}
		idLen++
	}
	dst = append(dst, b[:idLen]...)
	dst = append(dst, 0x80)
	for off := h.size; off < end; {
		var n int
		dst, n, err = indefinite(dst, b[off:end], depth+1)
		if err != nil {
			return nil, 0, err
		}
		off += n
	}
	return append(dst, 0, 0), end, nil
}
