package intune

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/scepca/scepca/challenge"
)

// Sentinel errors, matched with errors.Is. Each wraps the challenge
// sentinel the scep service maps to a failInfo.
var (
	// ErrRefused: Intune answered validateRequest (or a notification) with
	// a code other than Success; the challenge is not acceptable.
	ErrRefused = fmt.Errorf("intune: refused: %w", challenge.ErrInvalid)
	// ErrUnavailable: Entra ID, Graph or Intune could not be asked or gave
	// no usable answer (transport error, timeout, non-2xx, bad body).
	ErrUnavailable = fmt.Errorf("intune: %w", challenge.ErrUnavailable)
	// ErrToken: Entra ID refused the client-credentials request (wrong
	// secret, unknown app or tenant, no consent); Error.AADSTS says which.
	ErrToken = fmt.Errorf("token refused: %w", ErrUnavailable)
	// ErrForbidden: Graph answered 403 to service discovery: the app lacks
	// Application.Read.All (PROTOCOLS.md §3.4).
	ErrForbidden = fmt.Errorf("discovery forbidden: %w", ErrUnavailable)
	// ErrServiceNotFound: discovery did not list ScepRequestValidationFEService:
	// the scep_challenge_provider permission, its consent or the Intune
	// licence is missing.
	ErrServiceNotFound = fmt.Errorf("service %s not found: %w", ServiceName, ErrUnavailable)
	// ErrNotConfigured: the integration has no usable Intune settings, or
	// its client secret does not open under the key-encryption key.
	ErrNotConfigured = fmt.Errorf("integration not configured: %w", ErrUnavailable)
)

// maxDescription bounds what an Error keeps of a service's own text.
const maxDescription = 300

// Error is one failed call to Entra ID, Graph or Intune. Its text names the
// call, the HTTP status and the service's code, never a secret or token.
type Error struct {
	// Op is "token", "discovery" or the ScepActions name.
	Op string
	// Scope is the token scope, for Op "token".
	Scope string
	// Status is the HTTP status; 0 when no response arrived.
	Status int
	// Code is the OAuth "error", Intune's "code", or Graph's error.code.
	Code string
	// AADSTS is the Entra ID error number without its prefix, e.g. "7000215".
	AADSTS string
	// Description is the service's message, shortened.
	Description string
	// RequestID is the client-request-id we sent, for Microsoft support.
	RequestID string

	kind error // one of the sentinels above
	err  error // the cause (transport, context), if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("intune: ")
	b.WriteString(e.Op)
	if e.Scope != "" {
		b.WriteString(" for " + e.Scope)
	}
	if e.Status != 0 {
		b.WriteString(": HTTP " + strconv.Itoa(e.Status))
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.AADSTS != "" && !strings.Contains(e.Description, "AADSTS"+e.AADSTS) {
		b.WriteString(" (AADSTS" + e.AADSTS + ")")
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.err != nil {
		b.WriteString(": " + e.err.Error())
	}
	if e.RequestID != "" {
		b.WriteString(" [client-request-id " + e.RequestID + "]")
	}
	return b.String()
}

// Unwrap returns the kind sentinel and the cause.
func (e *Error) Unwrap() []error {
	var out []error
	for _, err := range []error{e.kind, e.err} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// shorten bounds a service's text and scrubs the secret from it, should a
// misbehaving server ever echo the request.
func shorten(s string, secret ClientSecret) string {
	if secret != "" {
		s = strings.ReplaceAll(s, string(secret), "REDACTED")
	}
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxDescription {
		s = string(r[:maxDescription]) + "…"
	}
	return s
}
