package scep_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/scep"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// boltSink stores audit events in a bbolt store, as cmd wires it.
type boltSink struct{ db *bolt.DB }

func (s boltSink) AppendEvents(ctx context.Context, events []*auditlog.Event) error {
	out := make([]*store.Event, len(events))
	for i, e := range events {
		out[i] = (*store.Event)(e)
	}
	return s.db.AppendEvents(ctx, out)
}

// auditFor returns the audit logger cfg asks for over st; nil means the
// service's default.
func auditFor(cfg fixtureConfig, st *bolt.DB) *slog.Logger {
	if cfg.audit == nil {
		return nil
	}
	return cfg.audit(st)
}

// withEvents makes the service's audit logger store events in the
// fixture's bbolt store; flush stores every event logged so far.
func withEvents(tb testing.TB) (fixtureOption, func()) {
	var h *auditlog.Handler
	ctx, cancel := context.WithCancel(context.WithoutCancel(tb.Context()))
	done := make(chan error, 1)
	opt := func(c *fixtureConfig) {
		c.audit = func(db *bolt.DB) *slog.Logger {
			var err error
			if h, err = auditlog.New(auditlog.Config{Sink: boltSink{db}}); err != nil {
				tb.Fatal(err)
			}
			go func() { done <- h.Run(ctx) }()
			return slog.New(h)
		}
	}
	flush := func() {
		tb.Helper()
		cancel()
		if err := <-done; err != nil {
			tb.Fatalf("auditlog Run() = %v", err)
		}
	}
	return opt, flush
}

// TestAuditEvents: an enrollment stores certificate.issue and a refused one
// certificate.refuse, both with the integration as actor; no challenge
// value reaches an event.
func TestAuditEvents(t *testing.T) {
	t.Parallel()
	opt, flush := withEvents(t)
	e := newEndpoint(t, opt)
	m, cert := e.enroll(t)
	bad := e.message(t, withChallenge("wrong-"+e.secret))
	wantFailure(t, bad, e.do(t, bad, ""), scep.BadRequest)
	flush()

	events, err := e.f.store.ListEvents(t.Context(), store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	actor := "scep:" + e.integ.ID
	want := []*store.Event{
		{Type: scep.EventRefuse, Actor: actor, Target: e.integ.ID, Outcome: store.OutcomeFailure, Details: map[string]string{
			"integrationId": e.integ.ID, "transactionId": bad.TransactionID, "messageType": "PKCSReq",
			"failInfo": "badRequest", "reason": "challenge_invalid",
		}},
		{Type: scep.EventIssue, Actor: actor, Target: serialOf(cert), Outcome: store.OutcomeSuccess, Details: map[string]string{
			"integrationId": e.integ.ID, "transactionId": m.TransactionID, "messageType": "PKCSReq",
			"subject": cert.Subject.String(), "caId": e.f.ca.IntermediateID(), "notAfter": cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z07:00"),
		}},
	}
	if diff := cmp.Diff(want, events, cmpopts.IgnoreFields(store.Event{}, "ID", "Time")); diff != "" {
		t.Errorf("stored events mismatch (-want +got):\n%s", diff)
	}
	raw, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), e.secret) {
		t.Errorf("events %s contain the challenge", raw)
	}
}
