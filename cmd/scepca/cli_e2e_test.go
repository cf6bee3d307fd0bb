package main

// End-to-end tests of the admin CLI (`scepca integrations`, `scepca
// devices`): the real entrypoint against `scepca serve`, enrollments by
// Debian's scepclient, proofs through the verifier, the store read back
// after the server stops.

import (
	"crypto/elliptic"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// cliResult is one CLI run.
type cliResult struct {
	stdout, stderr string
	err            error
}

// cli runs `scepca args...` against s with SCEPCA_SERVER and
// SCEPCA_TOKEN_FILE set, as an administrator's shell would.
func cli(t *testing.T, s *testServer, args ...string) cliResult {
	t.Helper()
	return cliEnv(t, testEnv("SCEPCA_SERVER", s.URL, "SCEPCA_TOKEN_FILE", filepath.Join(s.Data, "admin-token")), args...)
}

func cliEnv(t *testing.T, env func(string) string, args ...string) cliResult {
	t.Helper()
	var out, errOut strings.Builder
	err := run(t.Context(), args, env, &out, &errOut)
	return cliResult{out.String(), errOut.String(), err}
}

// cliJSON runs the CLI, wants success and decodes its output into T.
func cliJSON[T any](t *testing.T, s *testServer, args ...string) T {
	t.Helper()
	r := cli(t, s, args...)
	if r.err != nil {
		t.Fatalf("scepca %s = %v\nstderr: %s", strings.Join(args, " "), r.err, r.stderr)
	}
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("scepca %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
	return v
}

// cliFails runs the CLI and wants an error containing want.
func cliFails(t *testing.T, s *testServer, want string, args ...string) {
	t.Helper()
	r := cli(t, s, args...)
	if r.err == nil || !strings.Contains(r.err.Error(), want) {
		t.Errorf("scepca %s = %v, want an error containing %q\nstdout: %s", strings.Join(args, " "), r.err, want, r.stdout)
	}
}

type cliIntegration struct {
	ID                  string `json:"id"`
	Name                string `json:"name"`
	SCEPURL             string `json:"scepUrl"`
	SecretKey           string `json:"secretKey"`
	Enabled             bool   `json:"enabled"`
	PreviousSecretUntil string `json:"previousSecretUntil"`
}

// enrollRefused runs scepclient and wants a signed FAILURE with badRequest.
func enrollRefused(t *testing.T, what string, r scepclientRun) {
	t.Helper()
	out, code := runScepclient(t, t.TempDir(), r)
	if code != 1 || !strings.Contains(out, "failInfo: badRequest (2)") {
		t.Errorf("scepclient(%s) = exit %d, want 1 with badRequest\n%s", what, code, out)
	}
}

// TestCLIIntegrations: create, list, get, disable, enable, reset-secret
// with and without overlap, and delete with revocation, through `scepca
// integrations`, each checked with scepclient enrollments.
func TestCLIIntegrations(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	s := startServer(t)
	in := cliJSON[cliIntegration](t, s, "integrations", "create", "--name", "CLI laptops", "--platform", "DESKTOP", "--challenge-type", "STATIC", "--renewal")
	if in.ID == "" || in.SCEPURL == "" || in.SecretKey == "" || !in.Enabled {
		t.Fatalf("integrations create = %+v, want an enabled integration with a SCEP URL and secret", in)
	}
	list := cliJSON[[]cliIntegration](t, s, "integrations", "list")
	if len(list) != 2 || list[0].SecretKey != "" || list[1].SecretKey != "" {
		t.Errorf("integrations list = %+v, want the dev integration and ours, without secrets", list)
	}
	if r := cli(t, s, "integrations", "list", "--output", "table"); r.err != nil || !strings.Contains(r.stdout, "ID") || !strings.Contains(r.stdout, "CHALLENGETYPE") || !strings.Contains(r.stdout, in.ID+"  CLI laptops") {
		t.Errorf("integrations list --output table = %v\n%s", r.err, r.stdout)
	}
	if got := cliJSON[cliIntegration](t, s, "integrations", "get", in.ID); got.ID != in.ID || got.SecretKey != "" {
		t.Errorf("integrations get = %+v, want it without its secret", got)
	}
	fp := sha256Hex(listCAs(t, s)["INTERMEDIATE"].Cert)
	enroll := func(secret string) string {
		t.Helper()
		c := enrollScepclient(t, t.TempDir(), scepclientRun{URL: in.SCEPURL, Challenge: secret, CN: "cli managementAttestation CLI-1", Fingerprint: fp})
		return strings.ToUpper(c.SerialNumber.Text(16))
	}
	serials := []string{enroll(in.SecretKey)}

	// Disable: refused with a signed badRequest; enable: accepted again.
	if got := cliJSON[cliIntegration](t, s, "integrations", "disable", in.ID); got.Enabled {
		t.Errorf("integrations disable = %+v, want enabled false", got)
	}
	enrollRefused(t, "disabled integration", scepclientRun{URL: in.SCEPURL, Challenge: in.SecretKey, CN: "x", Fingerprint: fp})
	if got := cliJSON[cliIntegration](t, s, "integrations", "enable", "--output", "json", in.ID); !got.Enabled {
		t.Errorf("integrations enable = %+v, want enabled", got)
	}
	serials = append(serials, enroll(in.SecretKey))

	// Reset with overlap: old and new both work until the window ends (its
	// end is checked with an injected clock in challenge and admin tests).
	r1 := cliJSON[cliIntegration](t, s, "integrations", "reset-secret", in.ID, "--overlap", "1h")
	if r1.SecretKey == "" || r1.SecretKey == in.SecretKey || r1.PreviousSecretUntil == "" {
		t.Fatalf("integrations reset-secret --overlap 1h = %+v, want a new secret and previousSecretUntil", r1)
	}
	serials = append(serials, enroll(in.SecretKey), enroll(r1.SecretKey))
	// Reset without overlap: every older secret stops at once.
	r2 := cliJSON[cliIntegration](t, s, "integrations", "reset-secret", in.ID)
	enrollRefused(t, "first secret after a reset", scepclientRun{URL: in.SCEPURL, Challenge: in.SecretKey, CN: "x", Fingerprint: fp})
	enrollRefused(t, "second secret after a reset", scepclientRun{URL: in.SCEPURL, Challenge: r1.SecretKey, CN: "x", Fingerprint: fp})
	serials = append(serials, enroll(r2.SecretKey))

	// Errors are the problem's detail and a non-zero exit.
	cliFails(t, s, `no integration "intnope" (HTTP 404)`, "integrations", "get", "intnope")
	cliFails(t, s, "platform must be DESKTOP, IOS or ANDROID (HTTP 400)", "integrations", "create", "--name", "x")
	cliFails(t, s, "overlapSeconds must be between 0 and 604800", "integrations", "reset-secret", in.ID, "--overlap", "169h")
	cliFails(t, s, "want <id>, got 0 argument(s)", "integrations", "get")
	cliFails(t, s, `unknown action "rename"`, "integrations", "rename", in.ID)
	if r := cliEnv(t, testEnv("SCEPCA_SERVER", s.URL, "SCEPCA_TOKEN", "wrong"), "integrations", "list"); r.err == nil || !strings.Contains(r.err.Error(), "invalid bearer token (HTTP 401)") {
		t.Errorf("integrations list with a wrong token = %v, want a 401", r.err)
	}
	if r := cliEnv(t, testEnv(), "integrations", "list", "--server", s.URL, "--data", s.Data); r.err != nil {
		t.Errorf("integrations list with --server and the token from --data = %v", r.err)
	}

	// Delete with revocation: every certificate it issued is revoked, the
	// endpoint is gone, and a PKIOperation still gets a signed badRequest.
	del := cliJSON[struct {
		ID      string   `json:"id"`
		Revoked []string `json:"revokedCertificates"`
	}](t, s, "integrations", "delete", in.ID, "--revoke-certificates")
	if del.ID != in.ID || len(del.Revoked) != len(serials) {
		t.Errorf("integrations delete --revoke-certificates = %+v, want %d serials revoked", del, len(serials))
	}
	if resp := s.API(t, http.MethodGet, "/api/v1/device-integrations/"+in.ID, nil); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET deleted integration = %d %s, want a 404 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, op := range []string{"GetCACaps", "GetCACert"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, in.SCEPURL+"?operation="+op, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s of a deleted integration = %d, want 404", op, resp.StatusCode)
		}
	}
	if rep := pkiOperation(t, s, in.SCEPURL, r2.SecretKey); rep.Status != scepclient.StatusFailure || rep.FailInfo != "2" { // failInfo 2: badRequest
		t.Errorf("PKIOperation to a deleted integration = %s %s, want FAILURE badRequest", rep.Status, rep.FailInfo)
	}
	cliFails(t, s, "no integration", "integrations", "enable", in.ID)

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(s.Data, "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, serial := range serials {
		c, err := db.GetCertificate(t.Context(), serial)
		if err != nil || c.Status != store.CertRevoked || c.RevocationReason != attest.ReasonCessationOfOperation {
			t.Errorf("certificate %s after delete = %+v, %v, want REVOKED (cessationOfOperation)", serial, c, err)
		}
	}
}

// pkiOperation sends a PKCSReq with challenge to scepURL with the Go
// client, taking the CA certificates from the dev integration.
func pkiOperation(t *testing.T, s *testServer, scepURL, challenge string) *scepclient.Reply {
	t.Helper()
	key := testpki.NewECKey(t, elliptic.P256())
	csr, err := scepclient.CSR(key, pkix.Name{CommonName: "deleted"}, challenge)
	if err != nil {
		t.Fatal(err)
	}
	r, err := scepDo(t, s.SCEPURL, scepURL, scepclient.TypePKCSReq, csr)
	if err != nil {
		t.Fatalf("PKIOperation(%s) = %v", scepURL, err)
	}
	return r
}

type cliDevice struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	Platform     string `json:"platform"`
	User         string `json:"user"`
	Certificates []struct {
		Serial string `json:"serial"`
		Status string `json:"status"`
		Bound  bool   `json:"bound"`
	} `json:"certificates"`
}

// TestCLIDevices: list with filters and pages, get with certificates, and
// each lifecycle action through `scepca devices`, checked through the
// verifier and, at the end, in the store.
func TestCLIDevices(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cert, key, _ := enrollECDSA(t, s, t.TempDir(), "erin managementAttestation LAPTOP-7")
	serial := strings.ToUpper(cert.SerialNumber.Text(16))
	verify := func() string {
		t.Helper()
		dc, err := attestClient(s).AttestDesktop(t.Context(), key, cert, "LAPTOP-7", attest.PlatformMacOS, "")
		if err != nil {
			t.Fatal(err)
		}
		return dc.Reason
	}
	if got := verify(); got != attest.ReasonManaged {
		t.Fatalf("verify(new laptop) = %s, want MANAGED", got)
	}
	ios := cliJSON[cliIntegration](t, s, "integrations", "create", "--name", "Phones", "--platform", "IOS")
	for _, id := range []string{"PHONE-1", "PHONE-2", "PHONE-3", "PHONE-4"} {
		if dc, err := attestClient(s).AttestMobile(t.Context(), ios.ID, attest.Hint(ios.SecretKey), id, attest.PlatformIOS); err != nil || !dc.Managed {
			t.Fatalf("AttestMobile(%s) = %+v, %v", id, dc, err)
		}
	}

	ids := func(devs []cliDevice) string {
		var out []string
		for _, d := range devs {
			out = append(out, d.ID)
		}
		return strings.Join(out, ",")
	}
	if got := ids(cliJSON[[]cliDevice](t, s, "devices", "list")); got != "LAPTOP-7,PHONE-1,PHONE-2,PHONE-3,PHONE-4" {
		t.Errorf("devices list = %s", got)
	}
	page := cli(t, s, "devices", "list", "--limit", "2")
	var first []cliDevice
	if page.err != nil || json.Unmarshal([]byte(page.stdout), &first) != nil || ids(first) != "LAPTOP-7,PHONE-1" || !strings.Contains(page.stderr, "more devices: add --cursor ") {
		t.Fatalf("devices list --limit 2 = %v %s\nstderr: %s", page.err, page.stdout, page.stderr)
	}
	cursor := strings.Fields(strings.TrimPrefix(page.stderr, "more devices: add --cursor "))[0]
	if got := ids(cliJSON[[]cliDevice](t, s, "devices", "list", "--limit", "2", "--cursor", cursor)); got != "PHONE-2,PHONE-3" {
		t.Errorf("devices list --cursor = %s, want PHONE-2,PHONE-3", got)
	}
	if got := ids(cliJSON[[]cliDevice](t, s, "devices", "list", "--limit", "2", "--all", "--platform", "IOS")); got != "PHONE-1,PHONE-2,PHONE-3,PHONE-4" {
		t.Errorf("devices list --all --platform IOS = %s", got)
	}
	if got := ids(cliJSON[[]cliDevice](t, s, "devices", "list", "--user", "erin")); got != "LAPTOP-7" {
		t.Errorf("devices list --user erin = %s", got)
	}
	if r := cli(t, s, "devices", "list", "--output", "table", "--integration", ios.ID); r.err != nil || !strings.HasPrefix(r.stdout, "ID ") || strings.Count(r.stdout, "\n") != 5 {
		t.Errorf("devices list --output table --integration = %v\n%s", r.err, r.stdout)
	}

	d := cliJSON[cliDevice](t, s, "devices", "get", "LAPTOP-7")
	if d.Status != store.DeviceActive || d.User != "erin" || len(d.Certificates) != 1 || d.Certificates[0].Serial != serial || d.Certificates[0].Status != store.CertIssued || !d.Certificates[0].Bound {
		t.Errorf("devices get = %+v, want ACTIVE with its bound ISSUED certificate %s", d, serial)
	}
	steps := []struct {
		action, status, cert, verify string
	}{
		{"suspend", store.DeviceSuspended, store.CertIssued, attest.ReasonDeviceSuspended},
		{"unsuspend", store.DeviceActive, store.CertIssued, attest.ReasonManaged},
		{"deactivate", store.DeviceDeactivated, store.CertOnHold, attest.ReasonCertOnHold},
		{"activate", store.DeviceActive, store.CertIssued, attest.ReasonManaged},
		{"delete", store.DeviceDeleted, store.CertRevoked, attest.ReasonCertRevoked},
	}
	for i, st := range steps {
		if st.action == "delete" {
			// An invalid transition is a 409 with the device's state.
			cliJSON[cliDevice](t, s, "devices", "deactivate", "LAPTOP-7")
			cliFails(t, s, `device "LAPTOP-7" is DEACTIVATED: unsuspend applies to a SUSPENDED device (HTTP 409)`, "devices", "unsuspend", "LAPTOP-7")
		}
		got := cliJSON[cliDevice](t, s, "devices", st.action, "LAPTOP-7")
		if got.Status != st.status || len(got.Certificates) != 1 || got.Certificates[0].Status != st.cert {
			t.Errorf("step %d: devices %s = %+v, want %s with its certificate %s", i, st.action, got, st.status, st.cert)
		}
		if r := verify(); r != st.verify {
			t.Errorf("step %d: verify after %s = %s, want %s", i, st.action, r, st.verify)
		}
	}
	cliFails(t, s, `no device "NOPE" (HTTP 404)`, "devices", "get", "NOPE")
	cliFails(t, s, `no device "NOPE" (HTTP 404)`, "devices", "suspend", "NOPE")
	cliFails(t, s, "status must be ACTIVE, SUSPENDED, DEACTIVATED or DELETED (HTTP 400)", "devices", "list", "--status", "GONE")
	if got := ids(cliJSON[[]cliDevice](t, s, "devices", "list", "--status", "DELETED")); got != "LAPTOP-7" {
		t.Errorf("devices list --status DELETED = %s", got)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(s.Data, "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if c, err := db.GetCertificate(t.Context(), serial); err != nil || c.Status != store.CertRevoked {
		t.Errorf("certificate after devices delete = %+v, %v, want REVOKED", c, err)
	}
}
