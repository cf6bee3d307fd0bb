package main

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scepca/scepca/internal/metrics"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// newMetrics creates serve's own Prometheus registry (never the global
// default) with scepca's collectors, and the /metrics handler over it.
func newMetrics() (*metrics.Metrics, http.Handler) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, version(), runtime.Version())
	return m, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Bounded label values: anything a client sends that is not one of these is
// recorded as "other" (operations) or "unknown" (message types, integrations).
var (
	knownOperations   = map[string]bool{"": true, "GetCACaps": true, "GetCACert": true, "GetNextCACert": true, "PKIOperation": true}
	knownMessageTypes = map[string]bool{"": true, "PKCSReq": true, "RenewalReq": true, "CertPoll": true, "GetCert": true, "GetCRL": true}
)

// scepMetrics counts each SCEP request from its wide event (reqlog): it runs
// inside reqlog.Middleware, after the handler filled the event. Requests
// without an operation attribute (not a SCEP endpoint) are not counted.
func scepMetrics(m *metrics.Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		ev := reqlog.FromContext(r.Context())
		if ev == nil {
			return
		}
		a := map[string]string{}
		hasOp := false
		for _, at := range ev.Attrs() {
			if at.Key == reqlog.KeyOperation {
				hasOp = true
			}
			if at.Value.Kind() == slog.KindString {
				a[at.Key] = at.Value.String()
			}
		}
		if !hasOp {
			return
		}
		op := a[reqlog.KeyOperation]
		if !knownOperations[op] {
			op = "other"
		}
		mt := a[reqlog.KeyMessageType]
		if !knownMessageTypes[mt] {
			mt = "unknown"
		}
		integration := a[reqlog.KeyIntegrationID]
		if sw.status == http.StatusNotFound && op != "GetNextCACert" {
			integration = "unknown" // not an integration: keep the label bounded
		}
		outcome := a[reqlog.KeyPKIStatus]
		if outcome == "" {
			outcome = "ok"
			if sw.status >= 400 {
				outcome = "error"
			}
		}
		m.SCEPRequest(op, mt, integration, a[reqlog.KeyChallenge], outcome, a[reqlog.KeyFailInfo], a["fail_reason"])
	})
}

// statusRecorder remembers the response status.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// auditCounter counts certificate events from the audit log: the CA's
// "issued" and a successful "certificate.revoke" (scep, attest). It passes
// every record on unchanged.
type auditCounter struct {
	slog.Handler
	m *metrics.Metrics
}

func (h auditCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h auditCounter) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "issued":
		h.m.CertificateIssued()
	case "certificate.revoke":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "outcome" && a.Value.String() == "success" {
				h.m.CertificateRevoked()
				return false
			}
			return true
		})
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h auditCounter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return auditCounter{Handler: h.Handler.WithAttrs(attrs), m: h.m}
}

func (h auditCounter) WithGroup(name string) slog.Handler {
	return auditCounter{Handler: h.Handler.WithGroup(name), m: h.m}
}

// outstandingChallenges counts unused, unexpired dynamic challenges across
// the DYNAMIC integrations at scrape time.
func outstandingChallenges(st interface {
	ListIntegrations(ctx context.Context) ([]*store.Integration, error)
	CountOneTime(ctx context.Context, kind, owner string, now time.Time) (int, error)
}) func() float64 {
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		list, err := st.ListIntegrations(ctx)
		if err != nil {
			return -1
		}
		now, total := time.Now(), 0
		for _, in := range list {
			if in.ChallengeType != store.ChallengeDynamic {
				continue
			}
			n, err := st.CountOneTime(ctx, store.KindChallenge, in.ID, now)
			if err != nil {
				return -1
			}
			total += n
		}
		return float64(total)
	}
}
