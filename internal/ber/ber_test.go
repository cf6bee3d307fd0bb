package ber

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// nested returns n indefinite-length SEQUENCEs nested in each other around an
// INTEGER.
func nested(n int) []byte {
	b := []byte{0x02, 0x01, 0x05}
	for range n {
		b = append(append([]byte{0x30, 0x80}, b...), 0, 0)
	}
	return b
}

func nestedDER(n int) []byte {
	b := []byte{0x02, 0x01, 0x05}
	for range n {
		b = append(appendHeader(nil, 0, true, 16, len(b)), b...)
	}
	return b
}

func TestToDER(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte{0xab}, 300)
	tests := []struct {
		name string
		in   string
		want string // empty: an error is expected
	}{
		{name: "DER unchanged", in: "30 06 02 01 05 04 01 ff", want: "30 06 02 01 05 04 01 ff"},
		{name: "empty sequence", in: "30 00", want: "30 00"},
		{name: "indefinite sequence", in: "30 80 02 01 05 00 00", want: "30 03 02 01 05"},
		{name: "nested indefinite", in: "30 80 31 80 02 01 05 00 00 a0 80 05 00 00 00 00 00",
			want: "30 09 31 03 02 01 05 a0 02 05 00"},
		{name: "empty indefinite", in: "30 80 00 00", want: "30 00"},
		{name: "chunked OCTET STRING", in: "24 08 04 02 aa bb 04 02 cc dd", want: "04 04 aa bb cc dd"},
		{name: "chunked OCTET STRING nested indefinite",
			in:   "24 80 04 01 aa 24 80 04 01 bb 04 00 00 00 04 01 cc 00 00",
			want: "04 03 aa bb cc"},
		{name: "empty constructed OCTET STRING", in: "24 80 00 00", want: "04 00"},
		{name: "chunked OCTET STRING inside context tag", in: "a0 80 24 80 04 01 01 04 01 02 00 00 00 00",
			want: "a0 04 04 02 01 02"},
		{name: "context-specific constructed keeps chunks", in: "a0 80 04 01 01 04 01 02 00 00",
			want: "a0 06 04 01 01 04 01 02"},
		{name: "chunked BIT STRING", in: "23 80 03 02 00 aa 03 02 04 b0 00 00", want: "03 03 04 aa b0"},
		{name: "empty constructed BIT STRING", in: "23 00", want: "03 01 00"},
		{name: "chunked UTF8String", in: "2c 80 0c 01 61 0c 01 62 00 00", want: "0c 02 61 62"},
		{name: "chunked PrintableString", in: "33 06 13 01 61 13 01 62", want: "13 02 61 62"},
		{name: "non-minimal length", in: "30 81 03 02 01 05", want: "30 03 02 01 05"},
		{name: "non-minimal length leading zero", in: "04 82 00 01 ff", want: "04 01 ff"},
		{name: "non-minimal length inside", in: "30 84 00 00 00 04 04 82 00 00", want: "30 02 04 00"},
		{name: "non-minimal tag number", in: "9f 05 01 00", want: "85 01 00"},
		{name: "high tag number kept", in: "9f 1f 01 00", want: "9f 1f 01 00"},
		{name: "two-byte high tag number", in: "bf 81 00 80 05 00 00 00", want: "bf 81 00 02 05 00"},
		{name: "primitive SEQUENCE tag (smallstep GCM params)", in: "10 03 02 01 0c", want: "10 03 02 01 0c"},
		{name: "long content indefinite", in: "30 80 04 82 01 2c " + hex.EncodeToString(long) + " 00 00",
			want: "30 82 01 30 04 82 01 2c " + hex.EncodeToString(long)},
		{name: "chunked to long form", in: "24 80 04 81 96 " + hex.EncodeToString(long[:150]) + " 04 81 96 " +
			hex.EncodeToString(long[:150]) + " 00 00", want: "04 82 01 2c " + hex.EncodeToString(long)},

		{name: "empty input", in: ""},
		{name: "one byte", in: "30"},
		{name: "truncated content", in: "30 05 02 01 05"},
		{name: "truncated long length", in: "30 82 01"},
		{name: "missing end-of-contents", in: "30 80 02 01 05"},
		{name: "half end-of-contents", in: "30 80 02 01 05 00"},
		{name: "trailing garbage", in: "30 03 02 01 05 00"},
		{name: "trailing garbage after indefinite", in: "30 80 00 00 01"},
		{name: "trailing garbage after BER fix", in: "30 81 00 ff"},
		{name: "indefinite primitive", in: "04 80 01 00 00"},
		{name: "end-of-contents at top level", in: "00 00"},
		{name: "end-of-contents inside definite", in: "30 02 00 00"},
		{name: "reserved length octet", in: "30 ff 00"},
		{name: "length larger than input", in: "30 84 7f ff ff ff 00"},
		{name: "length overflow", in: "30 88 ff ff ff ff ff ff ff ff"},
		{name: "child overruns parent", in: "30 80 30 05 02 01 05 00 00"},
		{name: "wrong chunk tag", in: "24 03 02 01 00"},
		{name: "wrong chunk tag indefinite", in: "24 80 0c 01 61 00 00"},
		{name: "BIT STRING unused bits not last", in: "23 08 03 02 04 a0 03 02 00 aa"},
		{name: "BIT STRING chunk empty", in: "23 02 03 00"},
		{name: "BIT STRING unused bits too many", in: "23 03 03 01 08"},
		{name: "BIT STRING unused bits without data", in: "23 03 03 01 01"},
		{name: "tag number leading zero group", in: "1f 80 01 00"},
		{name: "tag number too large", in: "1f ff ff ff ff 01 00"},
		{name: "truncated tag number", in: "1f 81"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := unhex(t, tc.in)
			got, err := ToDER(in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ToDER(%x) = %x, want error", in, got)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("ToDER(%x) error %v does not wrap ErrMalformed", in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ToDER(%x) error: %v", in, err)
			}
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("ToDER(%x) = %x, want %x", in, got, want)
			}
			again, err := ToDER(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("ToDER(%x) = %x, %v; want it unchanged", got, again, err)
			}
		})
	}
}

func TestToDERDepth(t *testing.T) {
	t.Parallel()
	for _, indef := range []bool{false, true} {
		for _, tc := range []struct {
			depth int
			ok    bool
		}{{MaxDepth, true}, {MaxDepth + 1, false}, {10000, false}} {
			var in []byte
			if indef {
				in = nested(tc.depth)
			} else {
				in = nestedDER(tc.depth)
			}
			got, err := ToDER(in)
			if (err == nil) != tc.ok {
				t.Errorf("ToDER(%d nested SEQUENCEs, indefinite %v) error = %v, want ok %v", tc.depth, indef, err, tc.ok)
			}
			if err == nil && !bytes.Equal(got, nestedDER(tc.depth)) {
				t.Errorf("ToDER(%d nested SEQUENCEs, indefinite %v) = %x, want %x", tc.depth, indef, got, nestedDER(tc.depth))
			}
			if _, err := ToIndefinite(nestedDER(tc.depth)); (err == nil) != tc.ok {
				t.Errorf("ToIndefinite(%d nested SEQUENCEs) error = %v, want ok %v", tc.depth, err, tc.ok)
			}
		}
	}
	// Deeply nested constructed strings are bounded too.
	s := []byte{0x04, 0x01, 0xaa}
	for range 200 {
		s = append(append([]byte{0x24, 0x80}, s...), 0, 0)
	}
	if _, err := ToDER(s); err == nil {
		t.Errorf("ToDER(200 nested constructed OCTET STRINGs) succeeded, want error")
	}
}

func TestToDERFastPathAliases(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses to run in parallel tests.
	in := testCert(t)
	out, err := ToDER(in)
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &in[0] {
		t.Errorf("ToDER(DER certificate) copied its input; want the input returned as is")
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = ToDER(in) }); n != 0 {
		t.Errorf("ToDER(DER certificate) allocates %v times, want 0", n)
	}
}

func TestToIndefinite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "primitive", in: "02 01 05", want: "02 01 05"},
		{name: "sequence", in: "30 03 02 01 05", want: "30 80 02 01 05 00 00"},
		{name: "nested", in: "30 07 31 00 a0 03 02 01 05", want: "30 80 31 80 00 00 a0 80 02 01 05 00 00 00 00"},
		{name: "high tag", in: "bf 81 00 02 05 00", want: "bf 81 00 80 05 00 00 00"},
		{name: "indefinite input", in: "30 80 00 00"},
		{name: "trailing", in: "30 00 00"},
		{name: "truncated", in: "30 03 02 01"},
		{name: "bad child", in: "30 02 02 05"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ToIndefinite(unhex(t, tc.in))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ToIndefinite(%s) = %x, want error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ToIndefinite(%s) error: %v", tc.in, err)
			}
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("ToIndefinite(%s) = %x, want %x", tc.in, got, want)
			}
		})
	}
}

// chunk splits every primitive universal OCTET STRING longer than size into a
// constructed one made of size-byte chunks, as streaming encoders do. der must be
// DER; the result keeps definite lengths.
func chunk(tb testing.TB, der []byte, size int) []byte {
	tb.Helper()
	var walk func(b []byte) []byte
	walk = func(b []byte) []byte {
		h, err := parseHeader(b)
		if err != nil {
			tb.Fatal(err)
		}
		content := b[h.size : h.size+h.length]
		switch {
		case !h.constructed && h.class == 0 && h.tag == 4 && len(content) > size:
			var body []byte
			for len(content) > 0 {
				n := min(size, len(content))
				body = appendHeader(body, 0, false, 4, n)
				body = append(body, content[:n]...)
				content = content[n:]
			}
			return append(appendHeader(nil, 0, true, 4, len(body)), body...)
		case !h.constructed:
			return b[:h.size+h.length]
		}
		var body []byte
		for off := 0; off < len(content); {
			ch, err := parseHeader(content[off:])
			if err != nil {
				tb.Fatal(err)
			}
			body = append(body, walk(content[off:off+ch.size+ch.length])...)
			off += ch.size + ch.length
		}
		return append(appendHeader(nil, h.class, true, h.tag, len(body)), body...)
	}
	return walk(der)
}

func testCert(tb testing.TB) []byte {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(42),
		Subject:         pkix.Name{CommonName: "ber test", Organization: []string{"scepca"}},
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(time.Hour),
		DNSNames:        []string{"a.example", "b.example"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: bytes.Repeat([]byte{4}, 200)}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestCertificateRoundTrip(t *testing.T) {
	t.Parallel()
	der := testCert(t)
	indef, err := ToIndefinite(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(indef); err == nil {
		t.Fatalf("x509.ParseCertificate accepted indefinite-length BER; the test proves nothing")
	}
	for name, in := range map[string][]byte{
		"indefinite":         indef,
		"chunked":            chunk(t, der, 7),
		"chunked indefinite": mustIndef(t, chunk(t, der, 3)),
	} {
		got, err := ToDER(in)
		if err != nil {
			t.Fatalf("ToDER(%s certificate) error: %v", name, err)
		}
		if !bytes.Equal(got, der) {
			t.Fatalf("ToDER(%s certificate) = %x, want %x", name, got, der)
		}
		if _, err := x509.ParseCertificate(got); err != nil {
			t.Errorf("x509.ParseCertificate(ToDER(%s)) error: %v", name, err)
		}
	}
}

func mustIndef(tb testing.TB, b []byte) []byte {
	tb.Helper()
	out, err := ToIndefinite(b)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func FuzzBERToDER(f *testing.F) {
	der := testCert(f)
	f.Add(der)
	f.Add(mustIndef(f, der))
	f.Add(chunk(f, der, 5))
	f.Add(mustIndef(f, chunk(f, der, 64)))
	for _, s := range []string{
		"30 80 31 80 02 01 05 00 00 a0 80 05 00 00 00 00 00",
		"24 80 04 01 aa 24 80 04 01 bb 04 00 00 00 04 01 cc 00 00",
		"23 80 03 02 00 aa 03 02 04 b0 00 00",
		"30 84 00 00 00 04 04 82 00 00",
		"bf 81 00 80 05 00 00 00",
		"9f 05 01 00",
		"10 03 02 01 0c",
		"30 88 ff ff ff ff ff ff ff ff",
	} {
		f.Add(unhex(f, s))
	}
	f.Add(nested(MaxDepth + 1))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := ToDER(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ToDER(%x) error %v does not wrap ErrMalformed", in, err)
			}
			return
		}
		again, err := ToDER(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("ToDER(%x) = %x, %v; want the output %x unchanged", in, again, err, out)
		}
		indef, err := ToIndefinite(out)
		if err != nil {
			t.Fatalf("ToIndefinite(%x) error: %v", out, err)
		}
		back, err := ToDER(indef)
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("ToDER(ToIndefinite(%x)) = %x, %v; want the input", out, back, err)
		}
	})
}
