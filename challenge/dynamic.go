package challenge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/scepca/scepca/store"
)

// Dynamic challenge defaults (PROTOCOLS.md §2.6).
const (
	DefaultChallengeTTL   = 60 * time.Minute
	DefaultMaxOutstanding = 1000
)

// ErrCacheFull: the integration already has its maximum of unused,
// unexpired challenges ("The password cache is full.").
var ErrCacheFull = errors.New("challenge: password cache is full")

// Dynamic challenge events, reported to DynamicConfig.Observe for metrics.
const (
	EventMinted   = "minted"
	EventConsumed = "consumed"
	EventExpired  = "expired"
	EventRejected = "rejected"
)

// dynamicStore is the storage the dynamic challenge uses.
type dynamicStore interface {
	GetIntegration(ctx context.Context, id string) (*store.Integration, error)
	PutOneTime(ctx context.Context, kind string, v *store.OneTime) error
	RedeemOneTime(ctx context.Context, kind, key string, binding []byte, now time.Time) (*store.OneTime, error)
	CountOneTime(ctx context.Context, kind, owner string, now time.Time) (int, error)
	SweepOneTime(ctx context.Context, kind string, now time.Time) (int, error)
}

// DynamicConfig configures Dynamic.
type DynamicConfig struct {
	Store dynamicStore
	Now   func() time.Time
	// Audit receives one event per challenge fetch, never the password.
	Audit *slog.Logger
	// Observe, when set, is told of every minted, consumed, expired and
	// rejected challenge (reason set for rejections): the metrics seam.
	Observe func(event, reason string)
	// Throttle limits failed logins per source; zero fields take defaults.
	Throttle ThrottleConfig
	// SweepInterval is how often Run deletes expired challenges; default 1 minute.
	SweepInterval time.Duration
}

// Dynamic issues one-time challenges from an NDES mscep_admin-compatible
// page (Jamf Pro "Dynamic-Microsoft CA") and validates them at
// PKIOperation. A challenge is 16 uppercase hex characters from a CSPRNG,
// belongs to the integration that minted it, expires after its TTL, and is
// redeemed by exactly one SCEP transaction: a retry of that transaction
// (same transactionID and key) is not a second use.
type Dynamic struct {
	store    dynamicStore
	now      func() time.Time
	audit    *slog.Logger
	observe  func(event, reason string)
	throttle *Throttle
	interval time.Duration
}

// NewDynamic validates cfg and returns a Dynamic.
func NewDynamic(cfg DynamicConfig) (*Dynamic, error) {
	if cfg.Store == nil {
		return nil, errors.New("challenge: dynamic: Store is required")
	}
	d := &Dynamic{store: cfg.Store, now: cfg.Now, audit: cfg.Audit, observe: cfg.Observe, interval: cfg.SweepInterval}
	if d.now == nil {
		d.now = time.Now
	}
	if d.audit == nil {
		d.audit = slog.New(slog.DiscardHandler)
	}
	if d.observe == nil {
		d.observe = func(string, string) {}
	}
	if d.interval <= 0 {
		d.interval = time.Minute
	}
	d.throttle = NewThrottle(cfg.Throttle, d.now)
	return d, nil
}

// challengeKey is the store key of a challenge: a hash of the integration
// and the password, so a password presented to another integration is
// simply unknown there, and the store never holds the password itself.
func challengeKey(integrationID string, password Secret) string {
	h := sha256.New()
	h.Write([]byte(integrationID))
	h.Write([]byte{0})
	h.Write([]byte(password))
	return hex.EncodeToString(h.Sum(nil))
}

// binding identifies the SCEP transaction redeeming a challenge.
func binding(req Request) []byte {
	h := sha256.New()
	h.Write([]byte(req.TransactionID))
	h.Write([]byte{0})
	h.Write(req.PublicKeyHash)
	return h.Sum(nil)
}

// ttl and maxOutstanding read an integration's settings with defaults.
func ttl(in *store.Integration) time.Duration {
	if in.ChallengeTTLMinutes > 0 {
		return time.Duration(in.ChallengeTTLMinutes) * time.Minute
	}
	return DefaultChallengeTTL
}

func maxOutstanding(in *store.Integration) int {
	if in.MaxOutstanding > 0 {
		return in.MaxOutstanding
	}
	return DefaultMaxOutstanding
}

// Mint creates a new challenge for integ, unless it already has its maximum
// of unused, unexpired ones (ErrCacheFull). Under concurrent mints the
// bound may be exceeded by the number of racing callers.
func (d *Dynamic) Mint(ctx context.Context, integ *store.Integration) (Secret, error) {
	now := d.now()
	n, err := d.store.CountOneTime(ctx, store.KindChallenge, integ.ID, now)
	if err != nil {
		return "", err
	}
	if n >= maxOutstanding(integ) {
		d.observe(EventRejected, "cache_full")
		return "", ErrCacheFull
	}
	for range 3 {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("challenge: mint: %w", err)
		}
		pw := Secret(strings.ToUpper(hex.EncodeToString(b)))
		err := d.store.PutOneTime(ctx, store.KindChallenge, &store.OneTime{
			Key:       challengeKey(integ.ID, pw),
			Owner:     integ.ID,
			CreatedAt: now,
			ExpiresAt: now.Add(ttl(integ)),
		})
		if errors.Is(err, store.ErrExists) {
			continue // a 64-bit collision: draw again
		}
		if err != nil {
			return "", fmt.Errorf("challenge: mint: %w", err)
		}
		d.observe(EventMinted, "")
		return pw, nil
	}
	return "", errors.New("challenge: mint: repeated collisions")
}

// Validate implements Validator: the challenge must have been minted by
// this integration, be unexpired, and be unused or already redeemed by
// this same transaction. Redemption is atomic in the store, so of several
// transactions racing with one challenge exactly one wins.
func (d *Dynamic) Validate(ctx context.Context, req Request) error {
	if req.Integration == nil || req.Password == "" {
		d.observe(EventRejected, "missing")
		return fmt.Errorf("dynamic challenge: no challenge password in request: %w", ErrInvalid)
	}
	_, err := d.store.RedeemOneTime(ctx, store.KindChallenge, challengeKey(req.Integration.ID, req.Password), binding(req), d.now())
	switch {
	case err == nil:
		d.observe(EventConsumed, "")
		return nil
	case errors.Is(err, store.ErrNotFound):
		d.observe(EventRejected, "unknown")
		return fmt.Errorf("dynamic challenge: unknown to this integration: %w", ErrInvalid)
	case errors.Is(err, store.ErrUsed):
		d.observe(EventRejected, "used")
		return fmt.Errorf("dynamic challenge: used by another transaction: %w", ErrUsed)
	case errors.Is(err, store.ErrExpired):
		d.observe(EventRejected, "expired")
		return fmt.Errorf("dynamic challenge: %w", ErrExpired)
	}
	return fmt.Errorf("dynamic challenge: %w", err)
}

// Sweep deletes expired challenges and returns how many.
func (d *Dynamic) Sweep(ctx context.Context) (int, error) {
	n, err := d.store.SweepOneTime(ctx, store.KindChallenge, d.now())
	for range n {
		d.observe(EventExpired, "")
	}
	return n, err
}

// Run sweeps expired challenges every SweepInterval until ctx ends.
func (d *Dynamic) Run(ctx context.Context) error {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := d.Sweep(ctx); err != nil && ctx.Err() == nil {
				d.audit.WarnContext(ctx, "challenge.sweep", "outcome", "failure", "error", err)
			}
		}
	}
}
