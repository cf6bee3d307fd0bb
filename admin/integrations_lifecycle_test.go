package admin_test

import (
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
)

// testClock is a settable clock for the API's Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// newClockedFixture is the plain fixture with an injected clock.
func newClockedFixture(t *testing.T) (*fixture, *testClock) {
	t.Helper()
	clk := &testClock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	return newFixtureWith(t, openDB(t), maxBody, func(cfg *admin.Config) { cfg.Now = clk.Now }), clk
}

func decode[T any](t *testing.T, what string, resp *http.Response, body []byte, status int) T {
	t.Helper()
	var v T
	if resp.StatusCode != status {
		t.Fatalf("%s = %d %s, want %d", what, resp.StatusCode, body, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s Content-Type = %q, want application/json", what, ct)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: decode %s: %v", what, body, err)
	}
	return v
}

// staticOK reports whether the static validator accepts secret for the
// stored integration id at now.
func (f *fixture) staticOK(t *testing.T, id, secret string, now time.Time) bool {
	t.Helper()
	in, err := f.db.GetIntegration(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return challenge.Static{Now: func() time.Time { return now }}.Validate(t.Context(), challenge.Request{Integration: in, Password: challenge.Secret(secret)}) == nil
}

// TestIntegrationEnableDisable: disable and enable flip Enabled, are
// idempotent, and are audited once per change.
func TestIntegrationEnableDisable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := f.create(t, `{"name":"Laptops","platform":"DESKTOP","challengeType":"STATIC"}`)
	base := "/api/v1/device-integrations/" + in.ID
	for _, step := range []struct {
		action string
		want   bool
	}{{"disable", false}, {"disable", false}, {"enable", true}, {"enable", true}} {
		resp, b := f.do(t, http.MethodPost, base+"/lifecycle/"+step.action, "")
		got := decode[admin.Integration](t, step.action, resp, b, http.StatusOK)
		if got.Enabled != step.want || got.SecretKey != "" {
			t.Errorf("%s = %+v, want enabled %v and no secret", step.action, got, step.want)
		}
		resp, b = f.do(t, http.MethodGet, base, "")
		if got := decode[admin.Integration](t, "get", resp, b, http.StatusOK); got.Enabled != step.want {
			t.Errorf("get after %s: enabled %v, want %v", step.action, got.Enabled, step.want)
		}
	}
	if n := strings.Count(f.audit.String(), `"device.integration.disable"`); n != 1 {
		t.Errorf("audit has %d disable events, want 1 (the second disable changed nothing)\n%s", n, f.audit.String())
	}
	if n := strings.Count(f.audit.String(), `"device.integration.enable"`); n != 1 {
		t.Errorf("audit has %d enable events, want 1", n)
	}
	for _, action := range []string{"enable", "disable"} {
		resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations/intnope/lifecycle/"+action, "")
		wantProblem(t, action+" unknown", resp, b, http.StatusNotFound, `no integration "intnope"`)
	}
}

// TestResetSecretOverlap: a reset with overlapSeconds keeps the old static
// secret working until then; without it the old one stops at once.
func TestResetSecretOverlap(t *testing.T) {
	t.Parallel()
	f, clk := newClockedFixture(t)
	in := f.create(t, `{"name":"Laptops","platform":"DESKTOP","challengeType":"STATIC"}`)
	reset := "/api/v1/device-integrations/" + in.ID + "/lifecycle/reset-secret"
	now := clk.Now()

	resp, b := f.do(t, http.MethodPost, reset, `{"overlapSeconds":3600}`)
	r1 := decode[admin.Integration](t, "reset with overlap", resp, b, http.StatusOK)
	if r1.SecretKey == "" || r1.SecretKey == in.SecretKey || !r1.PreviousSecretUntil.Equal(now.Add(time.Hour)) {
		t.Fatalf("reset with overlap = %+v, want a new secret and previousSecretUntil %v", r1, now.Add(time.Hour))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("reset Cache-Control = %q, want no-store", cc)
	}
	for _, tc := range []struct {
		name, secret string
		at           time.Time
		want         bool
	}{
		{"old secret in the window", in.SecretKey, now.Add(59 * time.Minute), true},
		{"new secret in the window", r1.SecretKey, now, true},
		{"old secret at the window's end", in.SecretKey, now.Add(time.Hour), false},
		{"new secret after the window", r1.SecretKey, now.Add(2 * time.Hour), true},
	} {
		if got := f.staticOK(t, in.ID, tc.secret, tc.at); got != tc.want {
			t.Errorf("static validation, %s = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A reset without a body ends every overlap at once.
	resp, b = f.do(t, http.MethodPost, reset, "")
	r2 := decode[admin.Integration](t, "reset without overlap", resp, b, http.StatusOK)
	if !r2.PreviousSecretUntil.IsZero() {
		t.Errorf("reset without overlap = %+v, want no previousSecretUntil", r2)
	}
	for _, old := range []string{in.SecretKey, r1.SecretKey} {
		if f.staticOK(t, in.ID, old, now) {
			t.Error("an old secret works after a reset without overlap")
		}
	}
	if !f.staticOK(t, in.ID, r2.SecretKey, now) {
		t.Error("the new secret does not work")
	}
	if !strings.Contains(f.audit.String(), `"overlap_seconds":3600`) {
		t.Errorf("audit lacks the overlap:\n%s", f.audit.String())
	}
	for _, s := range []string{in.SecretKey, r1.SecretKey, r2.SecretKey} {
		if strings.Contains(f.audit.String(), s) || strings.Contains(f.reqlog.String(), s) {
			t.Error("a secret reached a log")
		}
	}

	for _, tc := range []struct{ name, body, detail string }{
		{"negative", `{"overlapSeconds":-1}`, "between 0 and 604800"},
		{"over 7 days", `{"overlapSeconds":604801}`, "between 0 and 604800"},
		{"not a number", `{"overlapSeconds":"1h"}`, `field "overlapSeconds" must be int64`},
		{"unknown field", `{"overlap":60}`, "unknown field"},
		{"not JSON", `overlap=60`, "invalid JSON body"},
	} {
		resp, b := f.do(t, http.MethodPost, reset, tc.body)
		wantProblem(t, "reset "+tc.name, resp, b, http.StatusBadRequest, tc.detail)
	}
	resp, b = f.do(t, http.MethodPost, "/api/v1/device-integrations/intnope/lifecycle/reset-secret", `{"overlapSeconds":60}`)
	wantProblem(t, "reset unknown", resp, b, http.StatusNotFound, "no integration")
}

// TestResetHintOverlap: a mobile reset with overlap keeps the old
// managementHint proving management; without overlap it stops at once.
func TestResetHintOverlap(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	ios := f.create(t, `{"name":"iPhones","platform":"IOS"}`)
	reset := "/api/v1/device-integrations/" + ios.ID + "/lifecycle/reset-secret"
	c := f.client()
	attestWith := func(hint string) string {
		t.Helper()
		dc, err := c.AttestMobile(t.Context(), ios.ID, attest.Hint(hint), "iphone-1", attest.PlatformIOS)
		if err != nil {
			t.Fatal(err)
		}
		return dc.Reason
	}
	resp, b := f.do(t, http.MethodPost, reset, `{"overlapSeconds":3600}`)
	r1 := decode[admin.Integration](t, "reset IOS with overlap", resp, b, http.StatusOK)
	if len(r1.SecretKey) != 43 || r1.PreviousSecretUntil.IsZero() {
		t.Fatalf("reset IOS with overlap = %+v, want a new hint and previousSecretUntil", r1)
	}
	if got := attestWith(ios.SecretKey); got != attest.ReasonManaged {
		t.Errorf("old hint in the window = %s, want MANAGED", got)
	}
	if got := attestWith(r1.SecretKey); got != attest.ReasonManaged {
		t.Errorf("new hint = %s, want MANAGED", got)
	}
	resp, b = f.do(t, http.MethodPost, reset, `{}`)
	r2 := decode[admin.Integration](t, "reset IOS", resp, b, http.StatusOK)
	for _, old := range []string{ios.SecretKey, r1.SecretKey} {
		if got := attestWith(old); got != attest.ReasonHintMismatch {
			t.Errorf("old hint after a reset without overlap = %s, want %s", got, attest.ReasonHintMismatch)
		}
	}
	if got := attestWith(r2.SecretKey); got != attest.ReasonManaged {
		t.Errorf("newest hint = %s, want MANAGED", got)
	}
}

// TestDeleteIntegration: a deleted integration is gone from get and list,
// refuses further changes, keeps its certificates unless asked, and a
// repeated delete completes a revocation.
func TestDeleteIntegration(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	keep := f.create(t, `{"name":"Keep certs","platform":"DESKTOP","challengeType":"STATIC"}`)
	drop := f.create(t, `{"name":"Revoke certs","platform":"DESKTOP","challengeType":"STATIC"}`)
	other := f.create(t, `{"name":"Other","platform":"DESKTOP","challengeType":"STATIC"}`)
	issueFor := func(integrationID string) string {
		t.Helper()
		key := testpki.NewECKey(t, elliptic.P256())
		csr, err := x509.ParseCertificateRequest(testpki.CSR(t, key, pkix.Name{CommonName: "u managementAttestation D-" + integrationID}, ""))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := f.ca.Prepare(t.Context(), &ca.Request{CSR: csr, IntegrationID: integrationID})
		if err != nil {
			t.Fatal(err)
		}
		_, rec, err := f.ca.Issue(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Serial
	}
	keepSerial := issueFor(keep.ID)
	dropSerials := []string{issueFor(drop.ID), issueFor(drop.ID)}
	otherSerial := issueFor(other.ID)
	// One already revoked is not revoked again.
	if err := f.db.UpdateCertificateStatus(t.Context(), dropSerials[1], store.CertRevoked, time.Now(), 1); err != nil {
		t.Fatal(err)
	}

	resp, b := f.do(t, http.MethodDelete, "/api/v1/device-integrations/"+keep.ID, "")
	if got := decode[admin.DeletedIntegration](t, "delete", resp, b, http.StatusOK); got.ID != keep.ID || len(got.RevokedCertificates) != 0 {
		t.Errorf("delete = %+v, want no revocations", got)
	}
	resp, b = f.do(t, http.MethodDelete, "/api/v1/device-integrations/"+drop.ID+"?revokeCertificates=true", "")
	got := decode[admin.DeletedIntegration](t, "delete with revocation", resp, b, http.StatusOK)
	if len(got.RevokedCertificates) != 1 || got.RevokedCertificates[0] != dropSerials[0] {
		t.Errorf("delete with revocation = %+v, want %s revoked", got, dropSerials[0])
	}
	for serial, want := range map[string]string{keepSerial: store.CertIssued, dropSerials[0]: store.CertRevoked, otherSerial: store.CertIssued} {
		c, err := f.db.GetCertificate(t.Context(), serial)
		if err != nil || c.Status != want {
			t.Errorf("certificate %s = %v, %v, want %s", serial, c, err, want)
		}
		if want == store.CertRevoked && c.RevocationReason != attest.ReasonCessationOfOperation {
			t.Errorf("certificate %s revocation reason = %d, want cessationOfOperation", serial, c.RevocationReason)
		}
	}
	if !strings.Contains(f.audit.String(), `"certificate.revoke"`) || !strings.Contains(f.audit.String(), `"device.integration.delete"`) {
		t.Errorf("audit lacks the delete and revoke events:\n%s", f.audit.String())
	}
	// Deleting again is allowed and revokes what is left.
	resp, b = f.do(t, http.MethodDelete, "/api/v1/device-integrations/"+keep.ID+"?revokeCertificates=1", "")
	if got := decode[admin.DeletedIntegration](t, "delete again", resp, b, http.StatusOK); len(got.RevokedCertificates) != 1 || got.RevokedCertificates[0] != keepSerial {
		t.Errorf("delete again with revocation = %+v, want %s revoked", got, keepSerial)
	}

	resp, b = f.do(t, http.MethodGet, "/api/v1/device-integrations", "")
	list := decode[[]admin.Integration](t, "list", resp, b, http.StatusOK)
	if len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("list after deletes = %+v, want only %s", list, other.ID)
	}
	stored, err := f.db.GetIntegration(t.Context(), drop.ID)
	if err != nil || stored.Enabled || !stored.Deleted() {
		t.Errorf("stored deleted integration = %+v, %v, want a disabled tombstone", stored, err)
	}
	base := "/api/v1/device-integrations/" + drop.ID
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodGet, base, ""},
		{http.MethodPost, base + "/lifecycle/enable", ""},
		{http.MethodPost, base + "/lifecycle/disable", ""},
		{http.MethodPost, base + "/lifecycle/reset-secret", ""},
		{http.MethodPost, base + "/test", ""},
		{http.MethodDelete, "/api/v1/device-integrations/intnope", ""},
	} {
		resp, b := f.do(t, tc.method, tc.path, tc.body)
		wantProblem(t, tc.method+" "+tc.path, resp, b, http.StatusNotFound, "no integration")
	}
	resp, b = f.do(t, http.MethodDelete, "/api/v1/device-integrations/"+other.ID+"?revokeCertificates=maybe", "")
	wantProblem(t, "delete with a bad flag", resp, b, http.StatusBadRequest, "revokeCertificates must be true or false")
	if c, err := f.db.GetIntegration(t.Context(), other.ID); err != nil || c.Deleted() {
		t.Errorf("a refused delete changed the integration: %+v, %v", c, err)
	}
}
