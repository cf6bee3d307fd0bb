package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/scepca/scepca/store"
)

// DefaultMaxUnused is how long a certificate may go without a successful
// attestation before the sweep revokes it (DESIGN.md §2; Okta revokes on
// day 91).
const DefaultMaxUnused = 90 * 24 * time.Hour

// DefaultSweepInterval is how often Sweeper.Run sweeps.
const DefaultSweepInterval = time.Hour

// ReasonCessationOfOperation is the RFC 5280 CRLReason of certificates the
// sweep revokes, and of those revoked with their deleted device.
const ReasonCessationOfOperation = 5

// SweepStore is what the sweep reads and changes.
type SweepStore interface {
	ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error)
	UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error
	ListBindings(ctx context.Context) ([]*store.Binding, error)
	GetBinding(ctx context.Context, certSHA256 string) (*store.Binding, error)
}

// SweeperConfig configures a Sweeper; zero fields take the defaults.
type SweeperConfig struct {
	Store SweepStore
	// Nonces, when set, has its expired nonces deleted on every sweep.
	Nonces *Nonces
	// MaxUnused is the longest a certificate may go without a successful
	// attestation, counted from its issuance or its last successful use,
	// whichever is later. Negative disables the revocation (a CA whose
	// certificates serve more than attestation).
	MaxUnused time.Duration
	Interval  time.Duration
	Now       func() time.Time
	// Audit receives one event per revocation.
	Audit *slog.Logger
}

// Sweeper is the verifier's background work: it revokes our certificates
// unused for MaxUnused (reason cessationOfOperation) and deletes expired
// nonces.
type Sweeper struct {
	cfg SweeperConfig
}

// NewSweeper checks cfg and returns a Sweeper.
func NewSweeper(cfg SweeperConfig) (*Sweeper, error) {
	if cfg.Store == nil {
		return nil, errors.New("attest: sweeper: Store is required")
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("attest: sweeper: negative interval %v", cfg.Interval)
	}
	if cfg.MaxUnused == 0 {
		cfg.MaxUnused = DefaultMaxUnused
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultSweepInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audit == nil {
		cfg.Audit = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{cfg: cfg}, nil
}

// Run sweeps at once and then every Interval until ctx ends; a failed
// sweep is logged and retried at the next tick. It returns nil when ctx
// ends.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Audit.WarnContext(ctx, "attestation.sweep", "outcome", "failure", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	Revoked []string // serials revoked as unused
	Nonces  int      // expired nonces deleted
}

// Sweep runs one sweep.
func (s *Sweeper) Sweep(ctx context.Context) (*SweepResult, error) {
	res := &SweepResult{}
	var errs []error
	if s.cfg.Nonces != nil {
		n, err := s.cfg.Nonces.Sweep(ctx)
		res.Nonces = n
		errs = append(errs, err)
	}
	if s.cfg.MaxUnused > 0 {
		revoked, err := s.revokeUnused(ctx)
		res.Revoked = revoked
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// revokeUnused revokes every ISSUED, unexpired certificate whose last
// successful attestation (or issuance, if never used) is MaxUnused or more
// ago.
func (s *Sweeper) revokeUnused(ctx context.Context) ([]string, error) {
	now := s.cfg.Now().UTC()
	certs, err := s.cfg.Store.ListCertificates(ctx, store.CertFilter{Status: store.CertIssued})
	if err != nil {
		return nil, fmt.Errorf("attest: sweep: %w", err)
	}
	binds, err := s.cfg.Store.ListBindings(ctx)
	if err != nil {
		return nil, fmt.Errorf("attest: sweep: %w", err)
	}
	lastUsed := make(map[string]time.Time, len(binds))
	for _, b := range binds {
		lastUsed[b.CertSHA256] = b.LastUsedAt
	}
	var revoked []string
	for _, c := range certs {
		if !now.Before(c.NotAfter) {
			continue // expired: refused anyway, nothing to revoke
		}
		sum := sha256.Sum256(c.DER)
		hash := strings.ToUpper(hex.EncodeToString(sum[:]))
		last := latest(c.IssuedAt, lastUsed[hash])
		if now.Before(last.Add(s.cfg.MaxUnused)) {
			continue
		}
		// Read the binding again: an attestation may have used the
		// certificate since the list was read.
		if b, err := s.cfg.Store.GetBinding(ctx, hash); err == nil {
			last = latest(last, b.LastUsedAt)
		} else if !errors.Is(err, store.ErrNotFound) {
			return revoked, fmt.Errorf("attest: sweep: %w", err)
		}
		if now.Before(last.Add(s.cfg.MaxUnused)) {
			continue
		}
		err := s.cfg.Store.UpdateCertificateStatus(ctx, c.Serial, store.CertRevoked, now, ReasonCessationOfOperation)
		if errors.Is(err, store.ErrConflict) {
			continue // revoked since the list was read
		}
		if err != nil {
			return revoked, fmt.Errorf("attest: sweep: revoke %s: %w", c.Serial, err)
		}
		revoked = append(revoked, c.Serial)
		s.cfg.Audit.InfoContext(ctx, "certificate.revoke",
			"target", c.Serial, "reason", "cessationOfOperation", "cause", "unused",
			"last_used", last, "max_unused", s.cfg.MaxUnused.String(), "device_id", c.DeviceID, "outcome", "success")
	}
	return revoked, nil
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
