package store

import (
	"context"
	"strings"
	"time"
)

// Audit event outcomes.
const (
	OutcomeSuccess = "SUCCESS"
	OutcomeFailure = "FAILURE"
)

// Event is one audit event: an administrative change, an issuance or
// refusal, a revocation, a lifecycle change, a secret reset.
type Event struct {
	// ID orders events: a caller-chosen, fixed-width string whose byte
	// order is time order (see NewEventID in internal/auditlog), unique
	// across replicas. It is the pagination cursor.
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// Type is the event type, dot-separated from general to specific:
	// "device.integration.create", "certificate.issue", ...
	Type string `json:"eventType"`
	// Actor is who caused the event: "token:<id>", "admin-token",
	// "scep:<integrationID>", "system".
	Actor string `json:"actor"`
	// Target is what the event is about: an integration, device or CA ID,
	// or a certificate serial.
	Target  string `json:"target,omitempty"`
	Outcome string `json:"outcome"`
	// Details are the event's other attributes as strings. Never a secret.
	Details map[string]string `json:"details,omitempty"`
}

// EventFilter selects events in ListEvents; zero fields match all.
type EventFilter struct {
	// Types match an event whose Type equals one of them or, for an entry
	// ending in ".", starts with it ("certificate." matches every
	// certificate event).
	Types []string
	// Since and Until bound Time: Since <= Time < Until.
	Since, Until time.Time
	// Before continues a listing: only events whose ID sorts before it.
	Before string
	Limit  int
}

// Matches reports whether e passes f's type and time conditions (not
// Before or Limit, which are positions in a listing).
func (f EventFilter) Matches(e *Event) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if t == e.Type || (strings.HasSuffix(t, ".") && strings.HasPrefix(e.Type, t)) {
			return true
		}
	}
	return false
}

// AuditStore keeps the audit log.
type AuditStore interface {
	// AppendEvents stores events in one write; an event whose ID is
	// already stored is skipped (a retried append is not a duplicate).
	AppendEvents(ctx context.Context, events []*Event) error
	// ListEvents returns the events matching f, newest (greatest ID)
	// first, at most f.Limit when f.Limit > 0.
	ListEvents(ctx context.Context, f EventFilter) ([]*Event, error)
	// SweepEvents deletes events with Time before cutoff and returns how
	// many (retention).
	SweepEvents(ctx context.Context, cutoff time.Time) (int, error)
}

// Token scopes.
const (
	// ScopeAdmin reaches the whole API.
	ScopeAdmin = "ADMIN"
	// ScopeVerify reaches only the attestation endpoints.
	ScopeVerify = "VERIFY"
)

// APIToken is an API bearer token. The token itself is shown once at
// creation; the store keeps its SHA-256.
type APIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt, when set, ends the token's validity.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// TokenStore keeps API tokens.
type TokenStore interface {
	// CreateToken stores t; ErrExists if its ID is taken.
	CreateToken(ctx context.Context, t *APIToken) error
	// GetToken returns token id; ErrNotFound if absent.
	GetToken(ctx context.Context, id string) (*APIToken, error)
	// ListTokens returns every token ordered by ID.
	ListTokens(ctx context.Context) ([]*APIToken, error)
	// DeleteToken deletes token id; ErrNotFound if absent.
	DeleteToken(ctx context.Context, id string) error
}
