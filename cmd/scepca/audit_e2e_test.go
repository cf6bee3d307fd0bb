package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/store"
)

// auditlog.Event must stay convertible to store.Event (eventSink converts
// pointers); this fails to compile when the two drift apart.
var _ = (*store.Event)(&auditlog.Event{})

// listEvents GETs /api/v1/logs?query and returns the events and the raw
// body.
func listEvents(t *testing.T, s *testServer, query string) ([]store.Event, string) {
	t.Helper()
	resp := s.API(t, http.MethodGet, "/api/v1/logs?"+query, nil)
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/logs?%s = %d %s (%v)", query, resp.StatusCode, b, err)
	}
	var body struct {
		Events []store.Event `json:"events"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	return body.Events, string(b)
}

// TestAuditLogScepclient: an enrollment by Debian's scepclient and a
// refused one are audit events with the integration as actor. The server
// is stopped gracefully (which flushes the batcher) and restarted on the
// same data, so the test reads what was durably stored without waiting on
// the flush interval.
func TestAuditLogScepclient(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	data := t.TempDir()
	s := startServer(t, "--data", data)
	in := createIntegration(t, s, "Audited laptops", nil)
	cert := enrollScepclient(t, t.TempDir(), scepclientRun{URL: in.SCEPURL, Challenge: in.SecretKey, CN: aliceCN})
	wrong := "Wrong" + in.SecretKey
	if out, code := runScepclient(t, t.TempDir(), scepclientRun{URL: in.SCEPURL, Challenge: wrong, CN: aliceCN}); code != 1 {
		t.Fatalf("scepclient(wrong challenge) = exit %d, want 1\n%s", code, out)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("graceful stop = %v\n%s", err, s.Stderr.String())
	}
	s2 := startServer(t, "--data", data)

	actor := "scep:" + in.ID
	issued, _ := listEvents(t, s2, "eventType=certificate.issue")
	if len(issued) != 1 {
		t.Fatalf("certificate.issue events = %+v, want 1", issued)
	}
	if e := issued[0]; e.Actor != actor || e.Target != ca.SerialString(cert.SerialNumber) || e.Outcome != store.OutcomeSuccess ||
		e.Details["integrationId"] != in.ID || e.Details["messageType"] != "PKCSReq" || !strings.Contains(e.Details["subject"], aliceCN) || e.Details["caId"] == "" {
		t.Errorf("certificate.issue = %+v, want actor %s, target the serial, the integration, PKCSReq, the subject and the CA", e, actor)
	}
	refused, _ := listEvents(t, s2, "eventType=certificate.refuse")
	if len(refused) != 1 {
		t.Fatalf("certificate.refuse events = %+v, want 1", refused)
	}
	if e := refused[0]; e.Actor != actor || e.Target != in.ID || e.Outcome != store.OutcomeFailure ||
		e.Details["failInfo"] != "badRequest" || e.Details["reason"] != "challenge_invalid" {
		t.Errorf("certificate.refuse = %+v, want actor %s, FAILURE, badRequest, challenge_invalid", e, actor)
	}
	created, _ := listEvents(t, s2, "eventType=device.integration.")
	if len(created) != 2 || created[0].Target != in.ID || created[0].Actor != "admin-token" || created[1].Actor != auditlog.ActorSystem {
		t.Errorf("device.integration events = %+v, want ours by admin-token after the dev integration by system", created)
	}
	_, raw := listEvents(t, s2, "limit=1000")
	for what, secret := range map[string]string{"secret key": in.SecretKey, "wrong challenge": wrong, "admin token": s.Token, "dev secret": s.Secret} {
		if strings.Contains(raw, secret) {
			t.Errorf("the audit log contains the %s", what)
		}
	}
}
