package attest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/scepca/scepca/store"
)

// DefaultNonceTTL is how long a nonce can be presented (PROTOCOLS.md §4.2).
const DefaultNonceTTL = 5 * time.Minute

// nonceBytes is the randomness of a nonce: 256 bits, at least the 128 the
// issue asks for and as many as a key.
const nonceBytes = 32

// nonceLen is the length of a nonce: base64url of nonceBytes, unpadded.
var nonceLen = base64.RawURLEncoding.EncodedLen(nonceBytes)

// Nonce errors. Consume wraps exactly one of them for a nonce the client
// got wrong; any other error is the store's.
var (
	ErrNonceUnknown = errors.New("attest: nonce unknown")
	ErrNonceUsed    = errors.New("attest: nonce already used")
	ErrNonceExpired = errors.New("attest: nonce expired")
)

// NonceStore is the storage nonces need: the one-time store under
// store.KindNonce.
type NonceStore interface {
	PutOneTime(ctx context.Context, kind string, v *store.OneTime) error
	GetOneTime(ctx context.Context, kind, key string) (*store.OneTime, error)
	ConsumeOneTime(ctx context.Context, kind, key string, now time.Time) (*store.OneTime, error)
	SweepOneTime(ctx context.Context, kind string, now time.Time) (int, error)
}

// Nonces mints and consumes attestation nonces. A nonce is stored when
// minted and marked used in the same atomic, durable write that checks it
// (store.OneTimeStore.ConsumeOneTime), so it is presented successfully at
// most once: across concurrent requests, across a crash and restart (the
// write is on disk before the answer), and across replicas sharing a store.
type Nonces struct {
	st  NonceStore
	ttl time.Duration
	now func() time.Time
}

// NewNonces returns a nonce source over st with the given TTL (0 means
// DefaultNonceTTL) and clock (nil means time.Now).
func NewNonces(st NonceStore, ttl time.Duration, now func() time.Time) (*Nonces, error) {
	if st == nil {
		return nil, errors.New("attest: nonces: nil store")
	}
	if ttl < 0 || ttl > time.Hour {
		return nil, fmt.Errorf("attest: nonces: TTL %v outside (0, 1h]", ttl)
	}
	if ttl == 0 {
		ttl = DefaultNonceTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Nonces{st: st, ttl: ttl, now: now}, nil
}

// Nonce is a freshly minted nonce.
type Nonce struct {
	Value     string
	ExpiresAt time.Time
}

// Mint returns a new nonce, stored until it expires.
func (n *Nonces) Mint(ctx context.Context) (*Nonce, error) {
	b := make([]byte, nonceBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("attest: mint nonce: %w", err)
	}
	now := n.now().UTC()
	v := &store.OneTime{
		Key:       base64.RawURLEncoding.EncodeToString(b),
		CreatedAt: now,
		ExpiresAt: now.Add(n.ttl),
	}
	if err := n.st.PutOneTime(ctx, store.KindNonce, v); err != nil {
		return nil, fmt.Errorf("attest: mint nonce: %w", err)
	}
	return &Nonce{Value: v.Key, ExpiresAt: v.ExpiresAt}, nil
}

// Check reports whether nonce can still be presented, without consuming
// it: nil, or an error wrapping ErrNonceUnknown, ErrNonceUsed or
// ErrNonceExpired (or the store's error). The verifier checks first and
// consumes the nonce in the write that records the proof's outcome
// (store.Attestation.Nonce), so a sign-in costs one durable write; that
// write re-checks atomically, so Check deciding "unused" is never trusted
// alone.
func (n *Nonces) Check(ctx context.Context, nonce string) error {
	if !wellFormedNonce(nonce) {
		return ErrNonceUnknown
	}
	v, err := n.st.GetOneTime(ctx, store.KindNonce, nonce)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNonceUnknown
	case err != nil:
		return fmt.Errorf("attest: check nonce: %w", err)
	case !v.UsedAt.IsZero():
		return ErrNonceUsed
	case !v.ExpiresAt.After(n.now()):
		return ErrNonceExpired
	}
	return nil
}

// NonceError maps the store's answer to consuming a nonce (by
// ConsumeOneTime or with store.Attestation.Nonce) to the nonce errors; it
// returns nil for any other error.
func NonceError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNonceUnknown
	case errors.Is(err, store.ErrUsed):
		return ErrNonceUsed
	case errors.Is(err, store.ErrExpired):
		return ErrNonceExpired
	}
	return nil
}

// Consume marks nonce used. It returns nil for the first presentation of
// a minted, unexpired nonce, and otherwise an error wrapping
// ErrNonceUnknown, ErrNonceUsed or ErrNonceExpired (or the store's error).
// A nonce of the wrong shape is unknown without a store lookup.
func (n *Nonces) Consume(ctx context.Context, nonce string) error {
	if !wellFormedNonce(nonce) {
		return ErrNonceUnknown
	}
	_, err := n.st.ConsumeOneTime(ctx, store.KindNonce, nonce, n.now())
	if err == nil {
		return nil
	}
	if nerr := NonceError(err); nerr != nil {
		return nerr
	}
	return fmt.Errorf("attest: consume nonce: %w", err)
}

// sweepGrace keeps expired nonces a while before Sweep deletes them, so a
// late presentation is told NONCE_EXPIRED rather than NONCE_UNKNOWN.
const sweepGrace = time.Hour

// Sweep deletes nonces that expired more than an hour ago and returns how
// many. A used nonce is kept at least until it expires, so a replay inside
// the TTL gets NONCE_USED; an hour after, NONCE_UNKNOWN.
func (n *Nonces) Sweep(ctx context.Context) (int, error) {
	c, err := n.st.SweepOneTime(ctx, store.KindNonce, n.now().Add(-sweepGrace))
	if err != nil {
		return 0, fmt.Errorf("attest: sweep nonces: %w", err)
	}
	return c, nil
}

func wellFormedNonce(s string) bool {
	if len(s) != nonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
