package ndesclient

import (
	"errors"
	"testing"
	"unicode/utf16"
)

func utf16le(s string, bom bool) []byte {
	var out []byte
	if bom {
		out = []byte{0xFF, 0xFE}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		out = append(out, byte(u), byte(u>>8))
	}
	return out
}

func TestParsePage(t *testing.T) {
	t.Parallel()
	const page = `<HTML><P> The thumbprint (hash value) for the CA certificate is: <B> 0A1B2C3D4E5F </B> <P> the ENROLLMENT challenge password is: <B> 8CE317021F690069 </B> <P>`
	for _, tc := range []struct {
		name string
		body []byte
		want string
		err  error
	}{
		{"utf-8", []byte(page), "8CE317021F690069", nil},
		{"utf-16le without BOM", utf16le(page, false), "8CE317021F690069", nil},
		{"utf-16le with BOM", utf16le(page, true), "8CE317021F690069", nil},
		{"cache full", utf16le("<P> The password cache is full. </P>", false), "", ErrCacheFull},
		{"permission", []byte("<P> You do not have sufficient permission to enroll with SCEP. </P>"), "", ErrPermission},
		{"other", []byte("<html>login</html>"), "", ErrInvalid},
		{"empty", nil, "", ErrInvalid},
	} {
		got, err := ParsePage(tc.body)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("ParsePage(%s) = %q, %v, want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParsePage(f *testing.F) {
	f.Add([]byte("The enrollment challenge password is: <B> ABC </B>"))
	f.Add(utf16le("<P> The password cache is full.", false))
	f.Add([]byte{0xFF, 0xFE, 0x3C})
	f.Fuzz(func(t *testing.T, b []byte) {
		pw, err := ParsePage(b)
		if (err == nil) == (pw == "") {
			t.Errorf("ParsePage() = %q, %v: want exactly one of a password and an error", pw, err)
		}
	})
}
