package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// TestAuditLogWiring: serve's audit logger writes the JSON line, stores the
// event in the bbolt store on stop, and counts it in
// scepca_audit_events_total.
func TestAuditLogWiring(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, metricsHandler := newMetrics()
	var lines strings.Builder
	a, err := newAuditLog(&auditOptions{retention: defaultAuditRetention}, st, slog.NewJSONHandler(&lines, nil), slog.New(slog.DiscardHandler), m)
	if err != nil {
		t.Fatal(err)
	}
	if a.sweeper == nil {
		t.Error("no retention sweeper with --audit-retention 400 days")
	}
	stop := a.start(t.Context())
	a.logger.InfoContext(t.Context(), "token.create", "target", "t1", "name", "ci", "outcome", "success")
	a.logger.InfoContext(t.Context(), "issued", "serial", "01") // a log line, no event
	stop()

	events, err := st.ListEvents(t.Context(), store.EventFilter{})
	if err != nil || len(events) != 1 || events[0].Type != "token.create" || events[0].Target != "t1" {
		t.Fatalf("stored events = %+v, %v; want the token.create", events, err)
	}
	if !strings.Contains(lines.String(), `"msg":"token.create"`) || !strings.Contains(lines.String(), `"msg":"issued"`) {
		t.Errorf("audit lines = %s, want both records", lines.String())
	}
	rec := httptest.NewRecorder()
	metricsHandler.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	for result, want := range map[string]float64{"stored": 1, "failed": 0, "dropped": 0} {
		if v, ok := sample(families, "scepca_audit_events_total", map[string]string{"result": result}); !ok || v != want {
			t.Errorf("scepca_audit_events_total{result=%q} = %v (present %v), want %v", result, v, ok, want)
		}
	}
}

func TestAuditRetentionFlag(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, _ := newMetrics()
	if _, err := newAuditLog(&auditOptions{retention: -time.Hour}, st, nil, nil, m); err == nil || !strings.Contains(err.Error(), "--audit-retention") {
		t.Errorf("newAuditLog(retention -1h) = %v, want an --audit-retention error", err)
	}
	m, _ = newMetrics()
	a, err := newAuditLog(&auditOptions{}, st, nil, nil, m)
	if err != nil || a.sweeper != nil {
		t.Errorf("newAuditLog(retention 0) = sweeper %v, %v; want none (keep forever)", a, err)
	}
	// serve refuses it with a clear error.
	err = run(context.WithoutCancel(t.Context()), []string{"serve", "--dev", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--audit-retention", "-24h"}, testEnv(), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--audit-retention") {
		t.Errorf("serve --audit-retention -24h = %v, want a clear error", err)
	}
}
