package challenge

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"

	"github.com/scepca/scepca/store"
)

// Sentinel errors; wrap with context and match with errors.Is.
var (
	// ErrInvalid: the challenge is wrong, missing or belongs to another integration.
	ErrInvalid = errors.New("challenge: invalid")
	// ErrUsed: a one-time challenge was already consumed by another transaction.
	ErrUsed = errors.New("challenge: already used")
	// ErrExpired: a one-time challenge outlived its TTL.
	ErrExpired = errors.New("challenge: expired")
	// ErrUnavailable: the service that decides (Intune) could not be asked
	// or gave no usable answer: a transport error, a timeout, a non-2xx or
	// an unparsable reply. Fail closed: the client gets no certificate.
	ErrUnavailable = errors.New("challenge: validation service unavailable")
)

// Secret is a challenge password or static secret. It never prints: String
// and LogValue return "REDACTED", so a secret that reaches a log line by
// mistake stays hidden.
type Secret string

// String implements fmt.Stringer without revealing the secret.
func (Secret) String() string { return "REDACTED" }

// LogValue implements slog.LogValuer without revealing the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// GoString keeps %#v from printing the secret.
func (Secret) GoString() string { return `"REDACTED"` }

// Reveal returns the secret's characters, for the one place that must show
// or compare them.
func (s Secret) Reveal() string { return string(s) }

// Request is what a validator sees of one enrollment.
type Request struct {
	Integration   *store.Integration
	Password      Secret
	TransactionID string
	// PublicKeyHash is SHA-256 of the CSR's SubjectPublicKeyInfo.
	PublicKeyHash []byte
	CSR           *x509.CertificateRequest
}

// Validator decides whether an enrollment's challenge is acceptable. It
// returns nil, or an error wrapping ErrInvalid, ErrUsed or ErrExpired for the
// client's fault, or another error for an internal failure.
type Validator interface {
	Validate(ctx context.Context, req Request) error
}
