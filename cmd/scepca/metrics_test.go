package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scepca/scepca/internal/ndesclient"
)

// scrape GETs url and parses it with Prometheus' text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return families
}

// sample sums the values of name's samples whose labels include want.
func sample(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, found
}

// TestMetricsAfterEnrollment scrapes /metrics of a real server after an
// enrollment, a wrong-challenge enrollment and a dynamic challenge fetch.
func TestMetricsAfterEnrollment(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	s := startServer(t, "--metrics-listen", metricsAddr)

	before := scrape(t, s.URL+"/metrics")
	if v, ok := sample(before, "scepca_build_info", nil); !ok || v != 1 {
		t.Errorf("scepca_build_info = %v, %v, want 1", v, ok)
	}
	for _, role := range []string{"root", "intermediate", "ra"} {
		if v, ok := sample(before, "scepca_ca_cert_expiry_seconds", map[string]string{"role": role}); !ok || v <= 0 {
			t.Errorf("scepca_ca_cert_expiry_seconds{role=%q} = %v, %v, want > 0", role, v, ok)
		}
	}

	enrollScepclient(t, t.TempDir(), scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN})
	if out, code := runScepclient(t, t.TempDir(), scepclientRun{URL: s.SCEPURL, Challenge: "wrong", CN: aliceCN}); code == 0 {
		t.Fatalf("scepclient(wrong challenge) = exit 0, want a failure\n%s", out)
	}
	in := createDynamic(t, s, "")
	if _, err := ndesclient.Fetch(t.Context(), nil, in.ChallengeURL, in.Username, in.Password); err != nil {
		t.Fatalf("Fetch(%s) = %v", in.ChallengeURL, err)
	}

	after := scrape(t, s.URL+"/metrics")
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"scepca_scep_requests_total", map[string]string{"operation": "PKIOperation", "message_type": "PKCSReq", "challenge_type": "STATIC", "outcome": "SUCCESS"}, 1},
		{"scepca_scep_requests_total", map[string]string{"operation": "PKIOperation", "message_type": "PKCSReq", "outcome": "FAILURE", "fail_info": "badRequest", "reason": "challenge_invalid"}, 1},
		{"scepca_scep_requests_total", map[string]string{"operation": "GetCACert", "outcome": "ok"}, 1},
		{"scepca_scep_phase_seconds", map[string]string{"phase": "decrypt"}, 2},
		{"scepca_scep_phase_seconds", map[string]string{"phase": "challenge"}, 2},
		{"scepca_scep_phase_seconds", map[string]string{"phase": "store"}, 2},
		{"scepca_scep_phase_seconds", map[string]string{"phase": "sign"}, 1},
		{"scepca_scep_phase_seconds", map[string]string{"phase": "encrypt"}, 1},
		{"scepca_certificates_issued_total", nil, 1},
		{"scepca_dynamic_challenges_total", map[string]string{"event": "minted"}, 1},
		{"scepca_dynamic_challenges_outstanding", nil, 1},
		{"scepca_store_op_seconds", map[string]string{"op": "PutCertificate"}, 1},
		{"scepca_store_ops_total", map[string]string{"op": "PutCertificate", "result": "ok"}, 1},
		{"scepca_store_ops_total", map[string]string{"op": "PutOneTime", "result": "ok"}, 1},
	} {
		if v, _ := sample(after, c.name, c.labels); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	// A fresh certificate (365 days) is not expiring; the gauge is there.
	if v, ok := sample(after, "scepca_certificates_expiring", nil); !ok || v != 0 {
		t.Errorf("scepca_certificates_expiring = %v, %v, want 0", v, ok)
	}
	// Labels stay bounded: the integration is the dev one, no device data.
	for _, m := range append(after["scepca_scep_requests_total"].GetMetric(), after["scepca_store_ops_total"].GetMetric()...) {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "alice") || strings.Contains(l.GetValue(), "UDID") {
				t.Errorf("label %s=%q carries device data", l.GetName(), l.GetValue())
			}
		}
	}

	// The same registry on --metrics-listen.
	own := scrape(t, "http://"+metricsAddr+"/metrics")
	if v, _ := sample(own, "scepca_certificates_issued_total", nil); v < 1 {
		t.Errorf("scepca_certificates_issued_total on --metrics-listen = %v, want at least 1", v)
	}
}

// TestAuditCounter: the audit log's "issued" and successful
// "certificate.revoke" move the certificate counters; records still pass.
func TestAuditCounter(t *testing.T) {
	var logged strings.Builder
	m, h := newMetrics()
	audit := slog.New(auditCounter{Handler: slog.NewTextHandler(&logged, nil), m: m}).With("log", "audit")
	audit.Info("issued", "serial", "01")
	audit.Warn("certificate.revoke", "serial", "01", "outcome", "success")
	audit.Error("certificate.revoke", "serial", "02", "outcome", "failure")
	audit.Info("device.integration.create", "outcome", "success")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"scepca_certificates_issued_total": 1, "scepca_certificates_revoked_total": 1} {
		if v, _ := sample(families, name, nil); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if n := strings.Count(logged.String(), "log=audit"); n != 4 {
		t.Errorf("audit handler passed %d records on, want 4\n%s", n, logged.String())
	}
}
