package main

// End-to-end tests of revocation: certificates enrolled through SCEP,
// their status changed by the device lifecycle and the certificates API,
// and checked through OCSP and the CRL by openssl — a client independent
// of ours — and through the attestation verifier.

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/store"
)

// revocationClient checks a server's OCSP responder and CRL with openssl
// from dir, which holds inter.pem and chain.pem (intermediate and root).
type revocationClient struct {
	s    *testServer
	dir  string
	caID string
}

func newRevocationClient(t *testing.T, s *testServer) *revocationClient {
	t.Helper()
	cas := listCAs(t, s)
	c := &revocationClient{s: s, dir: t.TempDir(), caID: cas["INTERMEDIATE"].ID}
	writePEMFile(t, filepath.Join(c.dir, "inter.pem"), "CERTIFICATE", cas["INTERMEDIATE"].Cert.Raw)
	writePEMFile(t, filepath.Join(c.dir, "chain.pem"), "CERTIFICATE", cas["INTERMEDIATE"].Cert.Raw, cas["ROOT"].Cert.Raw)
	return c
}

// ocsp asks the responder by POST about the certificate in certPath with
// `openssl ocsp` and returns the status line and what follows, after
// checking that openssl verified the response.
func (c *revocationClient) ocsp(t *testing.T, certPath string) string {
	t.Helper()
	out, code := runClient(t, c.dir, lookClient(t, "openssl"), "ocsp",
		"-issuer", "inter.pem", "-cert", certPath, "-CAfile", "chain.pem",
		"-url", c.s.URL+"/ocsp", "-no_nonce")
	if code != 0 || !strings.Contains(out, "Response verify OK") {
		t.Fatalf("openssl ocsp -url = exit %d:\n%s", code, out)
	}
	return out
}

// ocspGET makes the request with `openssl ocsp -reqout`, sends it by GET
// (base64, URL-encoded, RFC 6960 Appendix A.1) and has openssl verify the
// answer.
func (c *revocationClient) ocspGET(t *testing.T, certPath string) string {
	t.Helper()
	openssl := lookClient(t, "openssl")
	if out, code := runClient(t, c.dir, openssl, "ocsp", "-issuer", "inter.pem", "-cert", certPath, "-no_nonce", "-reqout", "req.der"); code != 0 {
		t.Fatalf("openssl ocsp -reqout = exit %d:\n%s", code, out)
	}
	req, err := os.ReadFile(filepath.Join(c.dir, "req.der"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(c.s.URL + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(req))) //nolint:noctx // test client
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("GET /ocsp/… = %d %q, %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "resp.der"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runClient(t, c.dir, openssl, "ocsp", "-respin", "resp.der", "-issuer", "inter.pem", "-cert", certPath, "-CAfile", "chain.pem", "-no_nonce")
	if code != 0 || !strings.Contains(out, "Response verify OK") {
		t.Fatalf("openssl ocsp -respin = exit %d:\n%s", code, out)
	}
	return out
}

// crl downloads /crl/{caID}.crl and returns `openssl crl -text` of it,
// after checking that openssl verified its signature.
func (c *revocationClient) crl(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(c.s.URL + "/crl/" + c.caID + ".crl") //nolint:noctx // test client
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET /crl/%s.crl = %d %q, %v", c.caID, resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "x.crl"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runClient(t, c.dir, lookClient(t, "openssl"), "crl", "-inform", "DER", "-in", "x.crl", "-CAfile", "chain.pem", "-noout", "-text")
	if code != 0 || !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl = exit %d:\n%s", code, out)
	}
	return out
}

// wantOCSP checks openssl's report on certPath: its status line and, for
// a revoked certificate, the reason.
func wantOCSP(t *testing.T, what, out, certPath, status, reason string) {
	t.Helper()
	if !strings.Contains(out, certPath+": "+status+"\n") || reason != "" && !strings.Contains(out, "Reason: "+reason) {
		t.Errorf("%s: openssl ocsp says\n%s\nwant %s: %s %s", what, out, certPath, status, reason)
	}
}

// wantCRL checks whether `openssl crl -text` lists serial, with reason.
func wantCRL(t *testing.T, what, out, serial, reason string) {
	t.Helper()
	listed := strings.Contains(out, "Serial Number: "+serial+"\n")
	switch {
	case reason == "" && listed:
		t.Errorf("%s: the CRL lists %s:\n%s", what, serial, out)
	case reason != "" && !listed:
		t.Errorf("%s: the CRL does not list %s:\n%s", what, serial, out)
	case reason != "" && !strings.Contains(out, reason):
		t.Errorf("%s: the CRL has no reason %s:\n%s", what, reason, out)
	}
}

// TestRevocationLifecycleOpenSSL: a device deactivated through the devices
// API has its certificate on hold — openssl ocsp says revoked
// (certificateHold), openssl crl lists it at once (the CRL refresh is an
// hour: the change itself regenerates it), the verifier says CERT_ON_HOLD
// — and reactivated it is good again everywhere.
func TestRevocationLifecycleOpenSSL(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	lookClient(t, "openssl")
	s := startServer(t, "--crl-refresh", "1h")
	dir := t.TempDir()
	cert := enrollScepclient(t, dir, scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: "erin managementAttestation REV1", Fingerprint: sha256Hex(listCAs(t, s)["INTERMEDIATE"].Cert)})
	certPath := filepath.Join(dir, "cert.pem")
	key := readPrivateKey(t, filepath.Join(dir, "key.pem"))
	serial := opensslSerial(cert)
	wantContext(t, "verify(ACTIVE)", verifyWith(t, s, key, cert, "REV1"), attest.ReasonManaged)

	c := newRevocationClient(t, s)
	wantOCSP(t, "issued (POST)", c.ocsp(t, certPath), certPath, "good", "")
	wantOCSP(t, "issued (GET)", c.ocspGET(t, certPath), certPath, "good", "")
	wantCRL(t, "issued", c.crl(t), serial, "")

	for _, step := range []struct {
		action   string
		status   string
		reason   string
		crl      string
		attested string
	}{
		{"deactivate", "revoked", "certificateHold", "Certificate Hold", attest.ReasonCertOnHold},
		{"activate", "good", "", "", attest.ReasonManaged},
	} {
		resp := s.API(t, http.MethodPost, "/api/v1/devices/REV1/lifecycle/"+step.action, nil)
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST …/lifecycle/%s = %d %s", step.action, resp.StatusCode, b)
		}
		wantOCSP(t, step.action+" (POST)", c.ocsp(t, certPath), certPath, step.status, step.reason)
		wantOCSP(t, step.action+" (GET)", c.ocspGET(t, certPath), certPath, step.status, step.reason)
		wantCRL(t, step.action, c.crl(t), serial, step.crl)
		wantContext(t, "verify(after "+step.action+")", verifyWith(t, s, key, cert, "REV1"), step.attested)
	}
}

// opensslSerial is a serial number as openssl prints it: uppercase
// hexadecimal, whole bytes.
func opensslSerial(cert *x509.Certificate) string {
	return fmt.Sprintf("%X", cert.SerialNumber.Bytes())
}

// revokeAPI posts a revocation (or hold) through the admin API.
func revokeAPI(t *testing.T, s *testServer, serial *big.Int, action, body string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	resp := s.API(t, http.MethodPost, "/api/v1/certificates/"+opensslSerial(&x509.Certificate{SerialNumber: serial})+"/"+action, rd)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST …/%s %s = %d %s", action, body, resp.StatusCode, b)
	}
}

// getCRLSCEP asks for the CRL with a SCEP GetCRL message (Go client).
func getCRLSCEP(t *testing.T, s *testServer, inter *x509.Certificate, serial *big.Int) []byte {
	t.Helper()
	content, err := scepclient.IssuerAndSerial(inter, serial)
	if err != nil {
		t.Fatal(err)
	}
	r, err := scepDo(t, s.SCEPURL, s.SCEPURL, scepclient.TypeGetCRL, content)
	if err != nil || r.Status != scepclient.StatusSuccess || len(r.CRLs) != 1 {
		t.Fatalf("GetCRL = %+v, %v, want SUCCESS with a CRL", r, err)
	}
	return r.CRLs[0]
}

// TestRevocationAPIOpenSSL: certificates revoked, held and released
// through the admin API of a running server (ECDSA CA) show at once —
// without waiting for the CRL refresh — in openssl's OCSP and CRL checks,
// in SCEP GetCRL and in the verifier.
func TestRevocationAPIOpenSSL(t *testing.T) {
	t.Parallel()
	lookClient(t, "openssl")
	s := startServer(t, "--key-type", "ecdsa", "--crl-refresh", "1h")
	c := newRevocationClient(t, s)
	inter := listCAs(t, s)["INTERMEDIATE"].Cert
	dir := t.TempDir()
	revoked, key, _ := enrollECDSA(t, s, dir, "frank managementAttestation REV2")
	writePEMFile(t, filepath.Join(c.dir, "revoked.pem"), "CERTIFICATE", revoked.Raw)
	held, _, _ := enrollECDSA(t, s, t.TempDir(), "gina managementAttestation REV3")
	writePEMFile(t, filepath.Join(c.dir, "held.pem"), "CERTIFICATE", held.Raw)
	wantContext(t, "verify(issued)", verifyWith(t, s, key, revoked, "REV2"), attest.ReasonManaged)
	wantCRL(t, "issued", c.crl(t), opensslSerial(revoked), "")

	revokeAPI(t, s, revoked.SerialNumber, "revoke", `{"reason": "keyCompromise"}`)
	revokeAPI(t, s, held.SerialNumber, "revoke", `{"reason": 6}`)
	wantOCSP(t, "revoked (POST)", c.ocsp(t, "revoked.pem"), "revoked.pem", "revoked", "keyCompromise")
	wantOCSP(t, "revoked (GET)", c.ocspGET(t, "revoked.pem"), "revoked.pem", "revoked", "keyCompromise")
	wantOCSP(t, "held", c.ocsp(t, "held.pem"), "held.pem", "revoked", "certificateHold")
	text := c.crl(t)
	wantCRL(t, "revoked", text, opensslSerial(revoked), "Key Compromise")
	wantCRL(t, "held", text, opensslSerial(held), "Certificate Hold")
	wantContext(t, "verify(revoked)", verifyWith(t, s, key, revoked, "REV2"), attest.ReasonCertRevoked)

	// SCEP GetCRL answers the same cached CRL.
	if err := os.WriteFile(filepath.Join(c.dir, "scep.crl"), getCRLSCEP(t, s, inter, revoked.SerialNumber), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runClient(t, c.dir, lookClient(t, "cmp"), "x.crl", "scep.crl"); code != 0 {
		t.Errorf("GetCRL and /crl/ differ: %s", out)
	}

	revokeAPI(t, s, held.SerialNumber, "unhold", "")
	wantOCSP(t, "released", c.ocsp(t, "held.pem"), "held.pem", "good", "")
	text = c.crl(t)
	wantCRL(t, "released", text, opensslSerial(held), "")
	wantCRL(t, "still revoked", text, opensslSerial(revoked), "Key Compromise")

	// Refused requests answer problem documents through the server too.
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPost, "/api/v1/certificates/" + opensslSerial(revoked) + "/revoke", `{"reason": 1}`, http.StatusConflict},
		{http.MethodPost, "/api/v1/certificates/" + opensslSerial(held) + "/revoke", `{"reason": "removeFromCRL"}`, http.StatusBadRequest},
		{http.MethodGet, "/api/v1/certificates?status=bogus", "", http.StatusBadRequest},
		{http.MethodGet, "/api/v1/certificates/FFFF", "", http.StatusNotFound},
		{http.MethodGet, "/crl/nope.crl", "", http.StatusNotFound},
		{http.MethodPut, "/ocsp", "", http.StatusMethodNotAllowed},
	} {
		var rd io.Reader
		if tc.body != "" {
			rd = strings.NewReader(tc.body)
		}
		resp := s.API(t, tc.method, tc.path, rd)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), `"status":`) {
			t.Errorf("%s %s = %d %q %s, want %d with a problem document", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, tc.status)
		}
	}

	// The list pages with a Link header through the server.
	resp := s.API(t, http.MethodGet, "/api/v1/certificates?limit=1", nil)
	link := resp.Header.Get("Link")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(link, "</api/v1/certificates?") || !strings.HasSuffix(link, `>; rel="next"`) {
		t.Errorf("GET /api/v1/certificates?limit=1 = %d, Link %q, want a next link", resp.StatusCode, link)
	}
}

// verifyWith attests deviceID with key and cert.
func verifyWith(t *testing.T, s *testServer, key crypto.Signer, cert *x509.Certificate, deviceID string) *attest.DeviceContext {
	t.Helper()
	dc, err := attestClient(s).AttestDesktop(t.Context(), key, cert, deviceID, attest.PlatformWindows, "")
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

func TestServeCRLRefreshFlag(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"2h", "10ms", "-1s"} {
		err := run(t.Context(), []string{"serve", "--dev", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--crl-refresh", v}, testEnv(), &strings.Builder{}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "CRL refresh") {
			t.Errorf("serve --crl-refresh %s = %v, want a CRL refresh error", v, err)
		}
	}
}

// TestCLICertificates drives `scepca certificates` against a server: list
// with filters and pages, get, revoke (the reason is required), hold and
// unhold, each seen by openssl ocsp.
func TestCLICertificates(t *testing.T) {
	t.Parallel()
	lookClient(t, "openssl")
	s := startServer(t)
	c := newRevocationClient(t, s)
	first, _, _ := enrollECDSA(t, s, t.TempDir(), "hana managementAttestation CLI-1")
	second, _, _ := enrollECDSA(t, s, t.TempDir(), "ivan managementAttestation CLI-2")
	s1, s2 := opensslSerial(first), opensslSerial(second)
	writePEMFile(t, filepath.Join(c.dir, "first.pem"), "CERTIFICATE", first.Raw)
	writePEMFile(t, filepath.Join(c.dir, "second.pem"), "CERTIFICATE", second.Raw)

	type cert struct {
		Serial, Status, RevocationReason, User, PEM string
	}
	serials := func(list []cert) string {
		var out []string
		for _, c := range list {
			out = append(out, c.Serial)
		}
		return strings.Join(out, ",")
	}
	canon := func(c *x509.Certificate) string { return strings.ToUpper(c.SerialNumber.Text(16)) }
	both := canon(second) + "," + canon(first)
	if got := serials(cliJSON[[]cert](t, s, "certificates", "list")); got != both {
		t.Errorf("certificates list = %s, want %s (newest first)", got, both)
	}
	page := cli(t, s, "certificates", "list", "--limit", "1")
	if page.err != nil || !strings.Contains(page.stderr, "more certificates: add --cursor ") {
		t.Errorf("certificates list --limit 1 = %v\nstderr: %s", page.err, page.stderr)
	}
	if got := serials(cliJSON[[]cert](t, s, "certificates", "list", "--limit", "1", "--all")); got != both {
		t.Errorf("certificates list --all = %s, want %s", got, both)
	}
	if got := serials(cliJSON[[]cert](t, s, "certificates", "list", "--user", "hana", "--status", "ISSUED")); got != canon(first) {
		t.Errorf("certificates list --user hana = %s", got)
	}
	if r := cli(t, s, "certificates", "list", "--output", "table", "--device", "CLI-2"); r.err != nil || !strings.HasPrefix(r.stdout, "SERIAL ") || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("certificates list --output table --device = %v\n%s", r.err, r.stdout)
	}
	if got := cliJSON[cert](t, s, "certificates", "get", s1); got.Serial != canon(first) || !strings.HasPrefix(got.PEM, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("certificates get = %+v", got)
	}

	cliFails(t, s, "reason is required", "certificates", "revoke", s1)
	cliFails(t, s, "unhold", "certificates", "revoke", "--reason", "removeFromCRL", s1)
	if got := cliJSON[cert](t, s, "certificates", "revoke", "--reason", "keyCompromise", s1); got.Status != store.CertRevoked || got.RevocationReason != "keyCompromise" {
		t.Errorf("certificates revoke = %+v", got)
	}
	wantOCSP(t, "revoked by the CLI", c.ocsp(t, "first.pem"), "first.pem", "revoked", "keyCompromise")
	cliFails(t, s, "already revoked", "certificates", "revoke", "--reason", "1", s1)

	if got := cliJSON[cert](t, s, "certificates", "hold", s2); got.Status != store.CertOnHold {
		t.Errorf("certificates hold = %+v", got)
	}
	wantOCSP(t, "held by the CLI", c.ocsp(t, "second.pem"), "second.pem", "revoked", "certificateHold")
	if got := cliJSON[cert](t, s, "certificates", "unhold", s2); got.Status != store.CertIssued {
		t.Errorf("certificates unhold = %+v", got)
	}
	wantOCSP(t, "released by the CLI", c.ocsp(t, "second.pem"), "second.pem", "good", "")
	if got := cliJSON[cert](t, s, "certificates", "revoke", "--reason", "4", s2); got.RevocationReason != "superseded" {
		t.Errorf("certificates revoke --reason 4 = %+v", got)
	}
	cliFails(t, s, "no certificate with serial", "certificates", "get", "ABCDEF")
}
