package ca

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKEK(t *testing.T) {
	t.Parallel()
	// 0xfb 0xff … makes base64 use the characters that differ between the
	// standard and URL alphabets.
	key := bytes.Repeat([]byte{0xfb, 0xff, 0xbf, 0x01}, kekSize/4)
	ref, err := newKEK(key)
	if err != nil {
		t.Fatalf("newKEK() = %v", err)
	}
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "hex lower", in: hex.EncodeToString(key)},
		{name: "hex upper", in: strings.ToUpper(hex.EncodeToString(key))},
		{name: "base64 std", in: base64.StdEncoding.EncodeToString(key)},
		{name: "base64 url", in: base64.URLEncoding.EncodeToString(key)},
		{name: "base64 raw std", in: base64.RawStdEncoding.EncodeToString(key)},
		{name: "base64 raw url", in: base64.RawURLEncoding.EncodeToString(key)},
		{name: "whitespace around", in: " \t" + base64.StdEncoding.EncodeToString(key) + "\r\n"},
		{name: "hex with newline", in: hex.EncodeToString(key) + "\n"},
		{name: "empty", in: "", wantErr: true},
		{name: "only whitespace", in: " \n", wantErr: true},
		{name: "hex too short", in: hex.EncodeToString(key[:31]), wantErr: true},
		{name: "hex too long", in: hex.EncodeToString(append(key, 0)), wantErr: true},
		{name: "64 non-hex characters", in: strings.Repeat("g", 64), wantErr: true},
		{name: "base64 of 16 bytes", in: base64.StdEncoding.EncodeToString(key[:16]), wantErr: true},
		{name: "base64 of 33 bytes", in: base64.StdEncoding.EncodeToString(append(key, 1)), wantErr: true},
		{name: "inner whitespace", in: hex.EncodeToString(key[:16]) + " " + hex.EncodeToString(key[16:]), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := ParseKEK([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseKEK(%q) = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err != nil {
				if s := strings.TrimSpace(tc.in); s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("ParseKEK(%q) error %q repeats the input", tc.in, err)
				}
				return
			}
			// Same key: what one seals, the other opens.
			sealed, err := ref.Seal([]byte("secret"), []byte("aad"))
			if err != nil {
				t.Fatalf("Seal() = %v", err)
			}
			if got, err := k.Open(sealed, []byte("aad")); err != nil || string(got) != "secret" {
				t.Errorf("ParseKEK(%q).Open() = %q, %v, want %q", tc.in, got, err, "secret")
			}
		})
	}
}

func TestKEKSealOpen(t *testing.T) {
	t.Parallel()
	k := testKEK(t)
	other, err := newKEK(bytes.Repeat([]byte{0x43}, kekSize))
	if err != nil {
		t.Fatalf("newKEK() = %v", err)
	}
	plaintext, aad := []byte("private key bytes"), []byte("ca-record-id")
	sealed, err := k.Seal(plaintext, aad)
	if err != nil {
		t.Fatalf("Seal() = %v", err)
	}
	again, err := k.Seal(plaintext, aad)
	if err != nil {
		t.Fatalf("Seal() = %v", err)
	}
	if bytes.Equal(sealed, again) {
		t.Errorf("Seal() twice gave the same bytes; want a fresh nonce each time")
	}
	if bytes.Contains(sealed, plaintext) {
		t.Errorf("Seal() output contains the plaintext")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	badVersion := bytes.Clone(sealed)
	badVersion[0] = 9

	tests := []struct {
		name      string
		kek       *KEK
		sealed    []byte
		aad       []byte
		wantErr   bool
		wantWrong bool // error wraps ErrWrongKEK
	}{
		{name: "round trip", kek: k, sealed: sealed, aad: aad},
		{name: "wrong KEK", kek: other, sealed: sealed, aad: aad, wantErr: true, wantWrong: true},
		{name: "wrong AAD", kek: k, sealed: sealed, aad: []byte("another-record"), wantErr: true, wantWrong: true},
		{name: "no AAD", kek: k, sealed: sealed, wantErr: true, wantWrong: true},
		{name: "tampered", kek: k, sealed: tampered, aad: aad, wantErr: true, wantWrong: true},
		{name: "truncated", kek: k, sealed: sealed[:10], aad: aad, wantErr: true},
		{name: "empty", kek: k, sealed: nil, aad: aad, wantErr: true},
		{name: "unknown version", kek: k, sealed: badVersion, aad: aad, wantErr: true},
		{name: "nil KEK", kek: nil, sealed: sealed, aad: aad, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.kek.Open(tc.sealed, tc.aad)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Open(%q) = %v, want error %v", tc.name, err, tc.wantErr)
			}
			if errors.Is(err, ErrWrongKEK) != tc.wantWrong {
				t.Errorf("Open(%q) = %v, want errors.Is(err, ErrWrongKEK) = %v", tc.name, err, tc.wantWrong)
			}
			if err == nil && !bytes.Equal(got, plaintext) {
				t.Errorf("Open(%q) = %q, want %q", tc.name, got, plaintext)
			}
		})
	}
}

func TestKEKRedaction(t *testing.T) {
	t.Parallel()
	k := testKEK(t)
	secrets := []string{
		hex.EncodeToString(testKEKBytes),
		base64.StdEncoding.EncodeToString(testKEKBytes),
		base64.RawStdEncoding.EncodeToString(testKEKBytes[:12]),
		string(testKEKBytes[:8]),
	}

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "kek", k, "group", slog.GroupValue(slog.Any("kek", k)))
	outputs := map[string]string{
		"slog JSON": buf.String(),
		"%v":        fmt.Sprintf("%v", k),
		"%+v":       fmt.Sprintf("%+v", k),
		"%#v":       fmt.Sprintf("%#v", k),
		"%s":        fmt.Sprintf("%s", k), //nolint:staticcheck // S1025: the %s verb is what is under test
		"%v value":  fmt.Sprintf("%v", *k),
	}
	for name, out := range outputs {
		if name != "%v value" && !strings.Contains(out, "REDACTED") {
			t.Errorf("%s of a KEK = %q, want it to contain %q", name, out, "REDACTED")
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s of a KEK = %q, contains key material %q", name, out, s)
			}
		}
	}
}

func TestGenerateKEKFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	k, err := GenerateKEKFile(path)
	if err != nil {
		t.Fatalf("GenerateKEKFile(%q) = %v", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Stat(%q) = %v", path, err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("GenerateKEKFile(%q) mode = %v, want %v", path, got, os.FileMode(0o600))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile(%q) = %v", path, err)
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Errorf("GenerateKEKFile(%q) wrote %q, want a trailing newline", path, b)
	}
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(b), "\n")); err != nil || len(raw) != kekSize {
		t.Errorf("GenerateKEKFile(%q) wrote %d bytes of base64 (%v), want base64 of %d bytes", path, len(raw), err, kekSize)
	}

	loaded, err := LoadKEKFile(path)
	if err != nil {
		t.Fatalf("LoadKEKFile(%q) = %v", path, err)
	}
	sealed, err := k.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatalf("Seal() = %v", err)
	}
	if _, err := loaded.Open(sealed, nil); err != nil {
		t.Errorf("LoadKEKFile(%q).Open() = %v, want the generated key", path, err)
	}

	if _, err := GenerateKEKFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("GenerateKEKFile(%q) over an existing file = %v, want %v", path, err, fs.ErrExist)
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, b) {
		t.Errorf("GenerateKEKFile(%q) changed the existing file", path)
	}

	tests := []struct {
		name    string
		content []byte // nil: the file does not exist
	}{
		{name: "missing"},
		{name: "garbage", content: []byte("not a key\n")},
		{name: "too large", content: bytes.Repeat([]byte("a"), maxKEKFileSize+10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, "load-"+strings.ReplaceAll(tc.name, " ", "-"))
			if tc.content != nil {
				if err := os.WriteFile(p, tc.content, 0o600); err != nil {
					t.Fatalf("WriteFile() = %v", err)
				}
			}
			if k, err := LoadKEKFile(p); err == nil {
				t.Errorf("LoadKEKFile(%q) = %v, nil, want an error", tc.name, k)
			}
		})
	}
}
