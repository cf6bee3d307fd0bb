package attest

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"

	"github.com/scepca/scepca/store"
)

// Bounds of a managementHint supplied by an administrator (PROTOCOLS.md
// §4.1, §4.2).
const (
	MinHintLength = 8
	MaxHintLength = 256
)

// Hint is a mobile integration's managementHint secret. It never prints:
// String, GoString and LogValue return "REDACTED", so a hint that reaches a
// log line or an error by mistake stays hidden (STYLE.md §5).
type Hint string

// String implements fmt.Stringer without revealing the hint.
func (Hint) String() string { return "REDACTED" }

// GoString keeps %#v from printing the hint.
func (Hint) GoString() string { return `"REDACTED"` }

// LogValue implements slog.LogValuer without revealing the hint.
func (Hint) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON keeps encoding/json (and so slog's JSON handler, which
// marshals structs holding a Hint) from writing the hint. The wire form of
// a plain hint is VerifyRequest.ManagementHint, a string.
func (Hint) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// MarshalText does the same for text encoders.
func (Hint) MarshalText() ([]byte, error) { return []byte("REDACTED"), nil }

// Reveal returns the hint's characters, for the one response that shows it
// and for the HMAC key.
func (h Hint) Reveal() string { return string(h) }

// GenerateHint returns a new hint: 256 random bits, base64url without
// padding (43 characters).
func GenerateHint() (Hint, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("attest: generate hint: %w", err)
	}
	return Hint(base64.RawURLEncoding.EncodeToString(b)), nil
}

// ErrHintFormat is returned by CheckHint; its text is safe to show.
var ErrHintFormat = fmt.Errorf("managementHint must be %d to %d printable ASCII characters without whitespace", MinHintLength, MaxHintLength)

// CheckHint reports whether an administrator-supplied hint is acceptable:
// MinHintLength to MaxHintLength printable ASCII characters (0x21-0x7E, so
// no whitespace), which every MDM's managed configuration can carry.
func CheckHint(h Hint) error {
	if len(h) < MinHintLength || len(h) > MaxHintLength {
		return ErrHintFormat
	}
	for i := 0; i < len(h); i++ {
		if h[i] < 0x21 || h[i] > 0x7e {
			return ErrHintFormat
		}
	}
	return nil
}

// Sealer encrypts and decrypts small secrets under the key-encryption key
// (*ca.KEK); aad binds a ciphertext to its record.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Opener is the half of Sealer the verifier needs.
type Opener interface {
	Open(ciphertext, aad []byte) ([]byte, error)
}

// SealHint seals h for integration id (additional data: the integration ID,
// so a ciphertext copied to another integration does not open).
func SealHint(s Sealer, integrationID string, h Hint) ([]byte, error) {
	if s == nil {
		return nil, errors.New("attest: seal hint: no sealer (key-encryption key)")
	}
	ct, err := s.Seal([]byte(h), []byte(integrationID))
	if err != nil {
		return nil, fmt.Errorf("attest: seal hint for %s: %w", integrationID, err)
	}
	return ct, nil
}

// OpenHint opens the sealed hint of a mobile integration.
func OpenHint(o Opener, in *store.Integration) (Hint, error) {
	if o == nil {
		return "", errors.New("attest: open hint: no sealer (key-encryption key)")
	}
	if len(in.HintCiphertext) == 0 {
		return "", fmt.Errorf("attest: integration %s has no managementHint", in.ID)
	}
	pt, err := o.Open(in.HintCiphertext, []byte(in.ID))
	if err != nil {
		return "", fmt.Errorf("attest: open hint of %s: %w", in.ID, err)
	}
	return Hint(pt), nil
}
