package admin_test

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/client"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/testpki"
)

// attestFixture is the admin API with the attestation verifier over a real
// bbolt store and CA, wired as cmd wires it (body limit of 2 MiB).
type attestFixture struct {
	*fixture
	kek *ca.KEK
	ca  *ca.Authority
	svc *attest.Service
}

func newAttestFixture(t *testing.T) *attestFixture {
	t.Helper()
	db := openDB(t)
	kek, err := ca.ParseKEK([]byte(strings.Repeat("6b", 32)))
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.Init(t.Context(), db, kek, ca.Config{Org: "Admin Attest"})
	if err != nil {
		t.Fatal(err)
	}
	nonces, err := attest.NewNonces(db, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := attest.NewAnchors(db, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	crls, err := attest.NewCRLs(attest.CRLConfig{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := attest.New(attest.Config{Nonces: nonces, Anchors: anchors, Certificates: db, CRLs: crls, Devices: db, Integrations: db, Hints: kek})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := attest.NewService(nonces, anchors, v)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureWith(t, db, 2<<20, func(cfg *admin.Config) {
		cfg.Sealer = kek
		cfg.Attestation = svc
	})
	return &attestFixture{fixture: f, kek: kek, ca: authority, svc: svc}
}

// raw sends body as is (no Content-Type unless given) with the token.
func (f *attestFixture) raw(t *testing.T, method, path string, body []byte, contentType string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s = %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// client is the Go attestation client on the fixture.
func (f *attestFixture) client() *client.Client {
	return &client.Client{URL: f.srv.URL, Token: f.token, HTTP: f.srv.Client()}
}

// TestAttestationAPI: nonces and proofs over HTTP; malformed requests are
// problem documents, failed proofs are 200 with a reason.
func TestAttestationAPI(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	ctx := t.Context()

	resp, b := f.raw(t, http.MethodPost, "/api/v1/attestation/nonces", nil, "")
	var n attest.NonceResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &n) != nil || len(n.Nonce) != 43 || n.ExpiresAt.IsZero() ||
		len(n.Issuers) != 1 || n.Issuers[0].ID != f.ca.IntermediateID() || n.Issuers[0].Subject != f.ca.Intermediate().Subject.String() || len(n.Issuers[0].SHA256) != 64 {
		t.Fatalf("POST nonces = %d %s, want a nonce, its expiry and our intermediate", resp.StatusCode, b)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("POST nonces Cache-Control = %q, want no-store", cc)
	}
	resp, b = f.raw(t, http.MethodPost, "/api/v1/attestation/nonces", []byte("{}"), "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST nonces {} = %d %s, want 200", resp.StatusCode, b)
	}
	resp, b = f.raw(t, http.MethodPost, "/api/v1/attestation/nonces", []byte(`{"ttl":1}`), "application/json")
	wantProblem(t, "POST nonces with parameters", resp, b, http.StatusBadRequest, "no parameters")

	key := testpki.NewECKey(t, elliptic.P256())
	cert := issue(t, f.ca, key, "erin managementAttestation MAC-1")
	dc, err := f.client().AttestDesktop(ctx, key, cert, "MAC-1", attest.PlatformMacOS, "")
	if err != nil || !dc.Managed || dc.Reason != attest.ReasonManaged || dc.User != "erin" {
		t.Fatalf("AttestDesktop() = %+v, %v, want managed for erin", dc, err)
	}
	dc, err = f.client().AttestDesktop(ctx, key, cert, "MAC-2", attest.PlatformMacOS, "")
	if err != nil || dc.Managed || dc.Reason != attest.ReasonCertBoundToOther {
		t.Errorf("AttestDesktop(other device) = %+v, %v, want 200 with %s", dc, err, attest.ReasonCertBoundToOther)
	}
	if !strings.Contains(f.reqlog.String(), `"reason":"CERT_BOUND_TO_OTHER_DEVICE"`) || !strings.Contains(f.reqlog.String(), `"device_id":"MAC-2"`) {
		t.Errorf("request log lacks the verify outcome:\n%s", f.reqlog.String())
	}

	tests := []struct {
		name   string
		body   string
		status int
		detail string
	}{
		{"not JSON", "nonce=x", http.StatusBadRequest, "invalid JSON body"},
		{"unknown field", `{"nonce":"n","deviceId":"d","platform":"IOS","integrationId":"i","hmac":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `","x":1}`, http.StatusBadRequest, `unknown field "x"`},
		{"no platform", `{"nonce":"n","deviceId":"d"}`, http.StatusBadRequest, "platform is required"},
		{"garbage certificate", `{"nonce":"n","deviceId":"d","platform":"MACOS","certificate":"AAAA","signature":"AAAA","signatureAlgorithm":"ECDSA_SHA256"}`, http.StatusBadRequest, "not a DER X.509 certificate"},
		{"too large", `{"nonce":"` + strings.Repeat("n", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, "larger than"},
	}
	for _, tc := range tests {
		resp, b := f.raw(t, http.MethodPost, "/api/v1/attestation/verify", []byte(tc.body), "application/json")
		wantProblem(t, "POST verify "+tc.name, resp, b, tc.status, tc.detail)
	}
	resp, b = f.doAuth(t, http.MethodPost, "/api/v1/attestation/nonces", "", "Bearer wrong")
	wantProblem(t, "POST nonces with a wrong token", resp, b, http.StatusUnauthorized, "invalid bearer token")
}

// TestAttestationNotConfigured: without a verifier the routes say so.
func TestAttestationNotConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, b := f.do(t, http.MethodPost, "/api/v1/attestation/nonces", "")
	wantProblem(t, "POST nonces without a verifier", resp, b, http.StatusServiceUnavailable, "not configured")
}

// TestMobileIntegration: IOS and ANDROID integrations with a generated or
// supplied managementHint, shown once, resettable; the HMAC proof through
// the API; the hint never appears in a listing, a log or an event.
func TestMobileIntegration(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	ctx := t.Context()

	ios := f.create(t, `{"name":"iPhones","platform":"IOS"}`)
	if ios.Platform != "IOS" || len(ios.SecretKey) != 43 || ios.SCEPURL != "" || ios.ChallengeType != "" || ios.AllowPlainHint {
		t.Errorf("create IOS = %+v, want a 43-character generated secretKey and no SCEP settings", ios)
	}
	desk := f.create(t, `{"name":"Laptops","platform":"DESKTOP","challengeType":"STATIC","requireHardwareKey":true}`)
	if !desk.RequireHardwareKey {
		t.Errorf("create DESKTOP with requireHardwareKey = %+v, want it shown", desk)
	}
	const supplied = "Supplied-Hint#2024"
	android := f.create(t, `{"name":"Pixels","platform":"ANDROID","managementHint":"`+supplied+`","allowPlainHint":true}`)
	if android.SecretKey != supplied || !android.AllowPlainHint {
		t.Errorf("create ANDROID with a supplied hint = %+v, want it echoed once and allowPlainHint", android)
	}

	for _, tc := range []struct{ name, body, detail string }{
		{"short hint", `{"name":"x","platform":"IOS","managementHint":"short"}`, "8 to 256 printable ASCII"},
		{"hint with a space", `{"name":"x","platform":"IOS","managementHint":"has a space"}`, "without whitespace"},
		{"challenge type", `{"name":"x","platform":"IOS","challengeType":"STATIC"}`, "challengeType applies to DESKTOP"},
		{"SCEP settings", `{"name":"x","platform":"ANDROID","renewal":true}`, "apply only to DESKTOP"},
		{"hint on desktop", `{"name":"x","platform":"DESKTOP","challengeType":"STATIC","managementHint":"12345678"}`, "apply only to IOS and ANDROID"},
		{"hardware key on mobile", `{"name":"x","platform":"IOS","requireHardwareKey":true}`, "requireHardwareKey applies only to DESKTOP"},
	} {
		resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations", tc.body)
		wantProblem(t, "create "+tc.name, resp, b, http.StatusBadRequest, tc.detail)
	}

	c := f.client()
	dc, err := c.AttestMobile(ctx, ios.ID, attest.Hint(ios.SecretKey), "iphone-1", attest.PlatformIOS)
	if err != nil || !dc.Managed || dc.IntegrationID != ios.ID {
		t.Fatalf("AttestMobile(generated hint) = %+v, %v, want managed", dc, err)
	}
	dc, err = c.AttestMobile(ctx, android.ID, supplied, "pixel-1", attest.PlatformAndroid)
	if err != nil || !dc.Managed {
		t.Fatalf("AttestMobile(supplied hint) = %+v, %v, want managed", dc, err)
	}
	dc, err = c.AttestMobile(ctx, ios.ID, "wrong-secret-1234", "iphone-1", attest.PlatformIOS)
	if err != nil || dc.Managed || dc.Reason != attest.ReasonHintMismatch {
		t.Errorf("AttestMobile(wrong secret) = %+v, %v, want %s", dc, err, attest.ReasonHintMismatch)
	}
	n, err := c.Nonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dc, err = c.Verify(ctx, &attest.VerifyRequest{Nonce: n.Nonce, DeviceID: "pixel-2", Platform: attest.PlatformAndroid, IntegrationID: android.ID, ManagementHint: supplied})
	if err != nil || !dc.Managed {
		t.Errorf("Verify(plain hint, allowed) = %+v, %v, want managed", dc, err)
	}

	// Reset: the old hint stops working at once, the new one works.
	resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations/"+ios.ID+"/lifecycle/reset-secret", "")
	var reset admin.Integration
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &reset) != nil || len(reset.SecretKey) != 43 || reset.SecretKey == ios.SecretKey {
		t.Fatalf("reset-secret(IOS) = %d %s, want a new 43-character secretKey", resp.StatusCode, b)
	}
	if dc, err := c.AttestMobile(ctx, ios.ID, attest.Hint(ios.SecretKey), "iphone-1", attest.PlatformIOS); err != nil || dc.Reason != attest.ReasonHintMismatch {
		t.Errorf("AttestMobile(old hint after reset) = %+v, %v, want %s", dc, err, attest.ReasonHintMismatch)
	}
	if dc, err := c.AttestMobile(ctx, ios.ID, attest.Hint(reset.SecretKey), "iphone-1", attest.PlatformIOS); err != nil || !dc.Managed {
		t.Errorf("AttestMobile(new hint) = %+v, %v, want managed", dc, err)
	}

	// Never again: not in get, list, logs or events.
	_, got := f.do(t, http.MethodGet, "/api/v1/device-integrations/"+ios.ID, "")
	_, list := f.do(t, http.MethodGet, "/api/v1/device-integrations", "")
	for _, secret := range []string{ios.SecretKey, reset.SecretKey, supplied} {
		for what, s := range map[string]string{"get": string(got), "list": string(list), "audit log": f.audit.String(), "request log": f.reqlog.String()} {
			if strings.Contains(s, secret) {
				t.Errorf("%s contains a managementHint:\n%s", what, s)
			}
		}
	}
	if !strings.Contains(string(list), `"allowPlainHint":true`) {
		t.Errorf("list = %s, want allowPlainHint shown for the ANDROID integration", list)
	}
}

// issue has authority issue a certificate for key.
func issue(t *testing.T, authority *ca.Authority, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(testpki.CSR(t, key, pkix.Name{CommonName: cn}, ""))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := authority.Prepare(t.Context(), &ca.Request{CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := authority.Issue(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// requireOpenSSL returns the openssl binary, skipping the test without it
// (failing under SCEPCA_REQUIRE_CLIENTS=1, as make test sets).
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("SCEPCA_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("openssl not found: %v (SCEPCA_REQUIRE_CLIENTS=1)", err)
		}
		t.Skipf("openssl not found: %v", err)
	}
	return p
}
