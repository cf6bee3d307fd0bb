package main

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scepca/scepca/challenge/intune/intunefake"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// Intune delegation end to end (PROTOCOLS.md §3, §5 items 14–17): scepca
// serve with an INTUNE integration whose authority and Graph URLs point at
// the strict fake on loopback, Debian's scepclient as the device.

// intuneIntegration is an INTUNE integration as the admin API shows it.
type intuneIntegration struct {
	ID      string `json:"id"`
	SCEPURL string `json:"scepUrl"`
	Intune  struct {
		Tenant   string `json:"tenant"`
		ClientID string `json:"clientId"`
	} `json:"intune"`
}

// createIntune creates an INTUNE integration at fake through the API and
// checks that the response carries no secret.
func createIntune(t *testing.T, s *testServer, fake *intunefake.Server, secret string) intuneIntegration {
	t.Helper()
	settings, err := json.Marshal(map[string]string{
		"tenant": fake.Tenant(), "clientId": fake.ClientID(), "clientSecret": secret,
		"authorityUrl": fake.URL, "graphUrl": fake.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := s.API(t, http.MethodPost, "/api/v1/device-integrations", strings.NewReader(`{"platform":"DESKTOP","challengeType":"INTUNE","name":"Intune Windows","intune":`+string(settings)+`}`))
	body := readAll(t, resp)
	var in intuneIntegration
	if err := json.Unmarshal(body, &in); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create INTUNE integration = %d %s, %v", resp.StatusCode, body, err)
	}
	if in.SCEPURL != s.URL+"/scep/"+in.ID || in.Intune.Tenant != fake.Tenant() || in.Intune.ClientID != fake.ClientID() {
		t.Errorf("create INTUNE integration = %s, want scepUrl, tenant and clientId", body)
	}
	if strings.Contains(string(body), secret) {
		t.Errorf("create INTUNE integration = %s, echoes the client secret", body)
	}
	return in
}

// testConnection runs POST …/test and returns the decoded diagnosis.
func testConnection(t *testing.T, s *testServer, id string) map[string]any {
	t.Helper()
	resp := s.API(t, http.MethodPost, "/api/v1/device-integrations/"+id+"/test", nil)
	body := readAll(t, resp)
	var d map[string]any
	if err := json.Unmarshal(body, &d); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("test connection = %d %s, %v", resp.StatusCode, body, err)
	}
	return d
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return b
}

// TestIntuneScepclient: the test connection passes, scepclient enrolls
// with a challenge Intune accepts (validate, sign, successNotification),
// a retry of the same transaction gets the same certificate without
// calling Intune, and a refused challenge gets badRequest. The client
// secret appears in no response and no log line, at debug level.
func TestIntuneScepclient(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	fake := intunefake.Start(t, intunefake.Config{})
	s := startServer(t, "--log-level", "debug")
	in := createIntune(t, s, fake, fake.ClientSecret())
	if d := testConnection(t, s, in.ID); d["ok"] != true {
		t.Fatalf("test connection = %v, want ok", d)
	}

	const accepted = "intune-challenge-accepted"
	fake.Accept(accepted)
	dir := t.TempDir()
	run := scepclientRun{URL: in.SCEPURL, Challenge: accepted, CN: "alice ManagementAttestation 0a1b2c3d"}
	cert := enrollScepclient(t, dir, run)
	if cert.Subject.CommonName != run.CN {
		t.Errorf("issued CN = %q, want %q", cert.Subject.CommonName, run.CN)
	}
	successes := fake.Successes()
	if len(successes) != 1 || fake.ActionRequests(intunefake.ActionValidate) != 1 {
		t.Fatalf("Intune saw %d validations and %d notifications, want 1 and 1", fake.ActionRequests(intunefake.ActionValidate), len(successes))
	}
	thumb := sha1.Sum(cert.Raw)
	if got, want := successes[0].CertificateThumbprint, strings.ToUpper(hex.EncodeToString(thumb[:])); got != want {
		t.Errorf("successNotification thumbprint = %s, want %s (SHA-1 of the certificate scepclient got)", got, want)
	}
	if got, want := successes[0].TransactionID, fake.Validates()[0].TransactionID; got != want || got == "" {
		t.Errorf("successNotification transactionId = %q, want validateRequest's %q", got, want)
	}

	// The same key again (so the same transactionID): the stored
	// certificate, and Intune is not asked again.
	if err := os.Remove(filepath.Join(dir, "cert.pem")); err != nil {
		t.Fatal(err)
	}
	again := enrollScepclient(t, dir, run)
	if again.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Errorf("retry serial = %x, want %x", again.SerialNumber, cert.SerialNumber)
	}
	if v, n := fake.ActionRequests(intunefake.ActionValidate), fake.ActionRequests(intunefake.ActionSuccess); v != 1 || n != 1 {
		t.Errorf("after the retry Intune saw %d validations and %d notifications, want still 1 and 1", v, n)
	}

	// A challenge Intune refuses.
	out, code := runScepclient(t, t.TempDir(), scepclientRun{URL: in.SCEPURL, Challenge: "not-an-intune-challenge", CN: "mallory"})
	if code != 1 || !strings.Contains(out, "failInfo: badRequest (2)") {
		t.Errorf("scepclient(refused challenge) = exit %d, want 1 with badRequest\n%s", code, out)
	}
	if n := fake.ActionRequests(intunefake.ActionFailure); n != 0 {
		t.Errorf("failureNotifications = %d, want none for Intune's own refusal", n)
	}

	// The secret is nowhere: not in GET, list, or any log line.
	for _, path := range []string{"/api/v1/device-integrations/" + in.ID, "/api/v1/device-integrations"} {
		if body := readAll(t, s.API(t, http.MethodGet, path, nil)); strings.Contains(string(body), fake.ClientSecret()) {
			t.Errorf("GET %s shows the client secret", path)
		}
	}
	logs := s.Stdout.String() + s.Stderr.String()
	if !strings.Contains(logs, "intune token fetched") || !strings.Contains(logs, "intune service discovered") {
		t.Fatalf("server log lacks the Intune debug lines; the secret check would prove nothing\n%s", logs)
	}
	if strings.Contains(logs, fake.ClientSecret()) {
		t.Error("the client secret appears in the server log")
	}
	for _, r := range fake.Requests() {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && strings.Contains(logs, tok) {
			t.Error("a bearer token appears in the server log")
		}
	}
}

// TestIntuneFailurePathsScepclient: every failure on the Intune path gives
// scepclient FAILURE badRequest, and the store ends with no certificate
// but the ones revoked because Intune never acknowledged them.
func TestIntuneFailurePathsScepclient(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	fake := intunefake.Start(t, intunefake.Config{})
	s := startServer(t, "--intune-timeout", "3s")
	in := createIntune(t, s, fake, fake.ClientSecret())

	tests := []struct {
		name   string
		action string
		reply  intunefake.Reply
	}{
		{"BadTenantIdInChallenge", intunefake.ActionValidate, intunefake.BadTenant()},
		{"ChallengeExpired", intunefake.ActionValidate, intunefake.Refuse("ChallengeExpired")},
		{"validate 500", intunefake.ActionValidate, intunefake.Status(http.StatusInternalServerError)},
		{"validate timeout", intunefake.ActionValidate, intunefake.Blocking()},
		{"successNotification 500", intunefake.ActionSuccess, intunefake.Status(http.StatusInternalServerError)},
		{"successNotification timeout", intunefake.ActionSuccess, intunefake.Blocking()},
	}
	for i, tc := range tests {
		challenge := "intune-challenge-" + strings.ReplaceAll(tc.name, " ", "-")
		fake.Accept(challenge)
		fake.ScriptChallenge(challenge, tc.action, tc.reply)
		out, code := runScepclient(t, t.TempDir(), scepclientRun{URL: in.SCEPURL, Challenge: challenge, CN: "device " + string(rune('a'+i))})
		if code != 1 || !strings.Contains(out, "failInfo: badRequest (2)") {
			t.Errorf("scepclient(%s) = exit %d, want 1 with badRequest\n%s", tc.name, code, out)
		}
	}
	// Each successNotification that reached Intune followed a signed
	// certificate, which must end revoked. Count what reached the fake: a
	// validate call that outlived --intune-timeout on a loaded machine
	// fails earlier, correctly, with nothing signed.
	revokedWant := fake.ActionRequests(intunefake.ActionSuccess)
	if revokedWant == 0 {
		t.Errorf("no successNotification reached Intune: the notification failure paths went untested")
	}
	if n := fake.ActionRequests(intunefake.ActionFailure); n != 0 {
		t.Errorf("failureNotifications = %d, want none: every failure was Intune's", n)
	}
	// A wrong secret is diagnosed, with its AADSTS code.
	wrong := createIntune(t, s, fake, "Wrong~secret-0123456789")
	if d := testConnection(t, s, wrong.ID); d["ok"] != false || d["problem"] != "INVALID_CLIENT_SECRET" || !strings.Contains(d["message"].(string), "AADSTS7000215") {
		t.Errorf("test connection(wrong secret) = %v, want INVALID_CLIENT_SECRET with AADSTS7000215", d)
	}
	fake.SetDiscoveryStatus(http.StatusForbidden)
	if d := testConnection(t, s, in.ID); d["problem"] != "MISSING_APPLICATION_READ_ALL" {
		t.Errorf("test connection(discovery 403) = %v, want MISSING_APPLICATION_READ_ALL", d)
	}
	fake.SetDiscoveryStatus(0)
	fake.SetSCEPProvider(false)
	if d := testConnection(t, s, in.ID); d["problem"] != "SERVICE_NOT_FOUND" {
		t.Errorf("test connection(no SCEP service) = %v, want SERVICE_NOT_FOUND", d)
	}
	if !strings.Contains(s.Stderr.String(), `"msg":"certificate.revoke"`) {
		t.Errorf("server log lacks the certificate.revoke audit event\n%s", s.Stderr.String())
	}
	if strings.Contains(s.Stdout.String()+s.Stderr.String(), fake.ClientSecret()) || strings.Contains(s.Stderr.String(), "Wrong~secret") {
		t.Error("a client secret appears in the server log")
	}

	// The store, once the server is gone: only revoked, never-delivered
	// certificates for this integration.
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	db, err := bolt.Open((&dataOptions{data: s.Data}).dbPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	certs, err := db.ListCertificates(t.Context(), store.CertFilter{IntegrationID: in.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != revokedWant {
		t.Errorf("stored certificates = %d, want %d (one per failed successNotification)", len(certs), revokedWant)
	}
	for _, c := range certs {
		if c.Status != store.CertRevoked || c.RevocationReason != 5 {
			t.Errorf("certificate %s = %s reason %d, want REVOKED cessationOfOperation", c.Serial, c.Status, c.RevocationReason)
		}
	}
}
