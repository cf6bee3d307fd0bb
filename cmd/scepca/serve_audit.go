package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/internal/metrics"
	"github.com/scepca/scepca/store"
)

// auditOptions are serve's audit-log flags.
type auditOptions struct {
	retention time.Duration
}

// defaultAuditRetention keeps events for 400 days: a year plus a margin
// for yearly reviews.
const defaultAuditRetention = 400 * 24 * time.Hour

func (o *auditOptions) register(fs *flag.FlagSet) {
	fs.DurationVar(&o.retention, "audit-retention", defaultAuditRetention, "delete audit events older than this (swept hourly); 0 keeps them forever")
}

// eventSink stores the audit batcher's events in the store; auditlog.Event
// has store.Event's fields, so the conversion copies nothing.
type eventSink struct{ st store.AuditStore }

func (s eventSink) AppendEvents(ctx context.Context, events []*auditlog.Event) error {
	out := make([]*store.Event, len(events))
	for i, e := range events {
		out[i] = (*store.Event)(e)
	}
	return s.st.AppendEvents(ctx, out)
}

// auditLog is serve's audit logger: JSON lines on the log (through next)
// and events in the store, plus the retention sweeper (nil when events are
// kept forever).
type auditLog struct {
	logger  *slog.Logger
	events  *auditlog.Handler
	sweeper *auditlog.Sweeper
}

func newAuditLog(o *auditOptions, st store.AuditStore, next slog.Handler, log *slog.Logger, m *metrics.Metrics) (*auditLog, error) {
	if o.retention < 0 {
		return nil, fmt.Errorf("--audit-retention %v: must not be negative", o.retention)
	}
	h, err := auditlog.New(auditlog.Config{Sink: eventSink{st}, Next: next, Logger: log, Observe: m.AuditEvents()})
	if err != nil {
		return nil, err
	}
	a := &auditLog{logger: slog.New(h), events: h}
	if o.retention > 0 {
		if a.sweeper, err = auditlog.NewSweeper(auditlog.SweeperConfig{Store: st, Retention: o.retention, Logger: log}); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// start runs the batcher until the returned stop, which flushes every
// queued event and waits; serve calls it after the HTTP server and the
// background loops stopped and before the store closes.
func (a *auditLog) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.events.Run(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}
