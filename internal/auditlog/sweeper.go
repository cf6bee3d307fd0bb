package auditlog

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// DefaultSweepInterval is how often Sweeper deletes old events.
const DefaultSweepInterval = time.Hour

// EventSweeper deletes events with Time before cutoff (store.AuditStore).
type EventSweeper interface {
	SweepEvents(ctx context.Context, cutoff time.Time) (int, error)
}

// Sweeper deletes events older than the retention period (store.AuditStore's
// SweepEvents), at start and then every interval.
type Sweeper struct {
	store     EventSweeper
	retention time.Duration
	interval  time.Duration
	log       *slog.Logger
	now       func() time.Time
}

// SweeperConfig configures a Sweeper.
type SweeperConfig struct {
	Store EventSweeper
	// Retention is how long events are kept; it must be positive.
	Retention time.Duration
	// Interval between sweeps; default DefaultSweepInterval.
	Interval time.Duration
	// Logger reports each sweep's result (the service log, not the audit
	// logger: a sweep is housekeeping, and it would sweep its own events).
	Logger *slog.Logger
	Now    func() time.Time
}

// NewSweeper validates cfg and returns a Sweeper.
func NewSweeper(cfg SweeperConfig) (*Sweeper, error) {
	if cfg.Store == nil {
		return nil, errors.New("auditlog: sweeper: Store is required")
	}
	if cfg.Retention <= 0 {
		return nil, errors.New("auditlog: sweeper: Retention must be positive")
	}
	s := &Sweeper{store: cfg.Store, retention: cfg.Retention, interval: cfg.Interval, log: cfg.Logger, now: cfg.Now}
	if s.interval <= 0 {
		s.interval = DefaultSweepInterval
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Sweep deletes the events older than the retention period once and
// returns how many.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	cutoff := s.now().Add(-s.retention)
	n, err := s.store.SweepEvents(ctx, cutoff)
	if err != nil {
		s.log.WarnContext(ctx, "audit event sweep failed", "error", err)
		return n, err
	}
	if n > 0 {
		s.log.InfoContext(ctx, "audit events swept", "deleted", n, "cutoff", cutoff)
	}
	return n, nil
}

// Run sweeps at once and then every interval until ctx ends; it returns
// nil then. A failed sweep is logged and tried again at the next interval.
func (s *Sweeper) Run(ctx context.Context) error {
	ticker := time.NewTicker(s.interval)
	defer ticker.Stop()
	for {
		_, _ = s.Sweep(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
