package ca

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// kekSize is the length of a key-encryption key: AES-256.
const kekSize = 32

// sealVersion is the first byte of every sealed blob, so that the format can
// change without guessing: version || 12-byte nonce || AES-GCM ciphertext+tag.
const sealVersion byte = 1

// maxKEKFileSize bounds what LoadKEKFile reads; a KEK file is one short line.
const maxKEKFileSize = 1024

// KEK is the key-encryption key: an AES-256-GCM key that seals private keys
// (and other secrets scepca must use) at rest. It never prints itself:
// String, GoString and LogValue return "REDACTED" (STYLE.md §5).
// A KEK is safe for concurrent use.
type KEK struct {
	aead cipher.AEAD
}

func newKEK(key []byte) (*KEK, error) {
	if len(key) != kekSize {
		return nil, fmt.Errorf("ca: KEK must be %d bytes, got %d", kekSize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("ca: KEK: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("ca: KEK: %w", err)
	}
	return &KEK{aead: aead}, nil
}

// ParseKEK parses a key-encryption key given as 64 hexadecimal characters or
// as standard or URL-safe base64 (padded or not) of 32 bytes. Surrounding
// whitespace is ignored, so a file written by GenerateKEKFile or an
// environment variable with a trailing newline both work. Errors never
// include the input.
func ParseKEK(b []byte) (*KEK, error) {
	s := string(bytes.TrimSpace(b))
	if s == "" {
		return nil, errors.New("ca: parse KEK: empty; want 64 hexadecimal characters or base64 of 32 bytes")
	}
	if len(s) == 2*kekSize {
		key, err := hex.DecodeString(s)
		if err != nil {
			return nil, errors.New("ca: parse KEK: 64 characters but not hexadecimal")
		}
		return newKEK(key)
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding,
	} {
		if key, err := enc.DecodeString(s); err == nil && len(key) == kekSize {
			return newKEK(key)
		}
	}
	return nil, fmt.Errorf("ca: parse KEK: %d characters are neither 64 hexadecimal characters nor base64 of 32 bytes", len(s))
}

// LoadKEKFile reads a key-encryption key from path (see ParseKEK).
func LoadKEKFile(path string) (*KEK, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ca: load KEK: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKEKFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("ca: load KEK %s: %w", path, err)
	}
	if len(b) > maxKEKFileSize {
		return nil, fmt.Errorf("ca: load KEK %s: file larger than %d bytes", path, maxKEKFileSize)
	}
	k, err := ParseKEK(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

// GenerateKEKFile creates a new random key-encryption key and writes it to
// path as standard base64 and a newline, with mode 0600. It refuses to
// overwrite an existing file (O_EXCL): replacing a KEK makes every sealed
// key unreadable.
func GenerateKEKFile(path string) (*KEK, error) {
	key := make([]byte, kekSize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("ca: generate KEK: %w", err)
	}
	k, err := newKEK(key)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ca: generate KEK: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // a partial key file must not be mistaken for a key
		return nil, fmt.Errorf("ca: generate KEK %s: %w", path, err)
	}
	return k, nil
}

// Seal encrypts plaintext with AES-256-GCM under a fresh random nonce,
// authenticating aad (which binds the ciphertext to its record, e.g. the CA
// record ID). The same aad must be given to Open.
func (k *KEK) Seal(plaintext, aad []byte) ([]byte, error) {
	if k == nil || k.aead == nil {
		return nil, errors.New("ca: seal: nil KEK")
	}
	out := make([]byte, 1, 1+k.aead.Overhead()+len(plaintext))
	out[0] = sealVersion
	return k.aead.Seal(out, nil, plaintext, aad), nil //nolint:gosec // G407 false positive: NewGCMWithRandomNonce takes a nil nonce and draws a random one per Seal
}

// Open decrypts a blob made by Seal with the same aad. A blob that does not
// authenticate (another KEK, another aad, altered bytes) yields an error
// wrapping ErrWrongKEK.
func (k *KEK) Open(ciphertext, aad []byte) ([]byte, error) {
	if k == nil || k.aead == nil {
		return nil, errors.New("ca: open: nil KEK")
	}
	if len(ciphertext) < 1+k.aead.Overhead() {
		return nil, fmt.Errorf("ca: open: sealed blob of %d bytes is too short", len(ciphertext))
	}
	if ciphertext[0] != sealVersion {
		return nil, fmt.Errorf("ca: open: unknown sealed format version %d", ciphertext[0])
	}
	pt, err := k.aead.Open(nil, nil, ciphertext[1:], aad)
	if err != nil {
		return nil, fmt.Errorf("ca: open: %w", ErrWrongKEK)
	}
	return pt, nil
}

// String returns "REDACTED".
func (*KEK) String() string { return "REDACTED" }

// GoString returns "REDACTED", so %#v does not print the key either.
func (*KEK) GoString() string { return "REDACTED" }

// LogValue returns "REDACTED".
func (*KEK) LogValue() slog.Value { return slog.StringValue("REDACTED") }
