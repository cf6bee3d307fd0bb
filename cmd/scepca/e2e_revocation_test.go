package main

// End-to-end tests of revocation: certificates enrolled through SCEP,
// their status changed by the device lifecycle and the certificates API,
// and checked through OCSP and the CRL by openssl — a client independent
// of ours — and through the attestation verifier.

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/store/bolt"
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

// TestRevocationLifecycleOpenSSL: a device deactivated through
// attest.Lifecycle has its certificate on hold — openssl ocsp says revoked
// (certificateHold), openssl crl lists it, the verifier says CERT_ON_HOLD —
// and reactivated it is good again everywhere.
func TestRevocationLifecycleOpenSSL(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	lookClient(t, "openssl")
	data := t.TempDir()
	s := startServer(t, "--data", data)
	dir := t.TempDir()
	cert := enrollScepclient(t, dir, scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: "erin managementAttestation REV1", Fingerprint: sha256Hex(listCAs(t, s)["INTERMEDIATE"].Cert)})
	certPath := filepath.Join(dir, "cert.pem")
	key := readPrivateKey(t, filepath.Join(dir, "key.pem"))
	serial := opensslSerial(cert)
	attestOnce := func(s *testServer) *attest.DeviceContext {
		t.Helper()
		dc, err := attestClient(s).AttestDesktop(t.Context(), key, cert, "REV1", attest.PlatformMacOS, "")
		if err != nil {
			t.Fatal(err)
		}
		return dc
	}
	wantContext(t, "verify(ACTIVE)", attestOnce(s), attest.ReasonManaged)

	c := newRevocationClient(t, s)
	wantOCSP(t, "issued (POST)", c.ocsp(t, certPath), certPath, "good", "")
	wantOCSP(t, "issued (GET)", c.ocspGET(t, certPath), certPath, "good", "")
	wantCRL(t, "issued", c.crl(t), serial, "")

	for _, step := range []struct {
		name     string
		change   func(*attest.Lifecycle) error
		status   string
		reason   string
		crl      string
		attested string
	}{
		{"deactivate", func(l *attest.Lifecycle) error { _, err := l.Deactivate(t.Context(), "REV1"); return err }, "revoked", "certificateHold", "Certificate Hold", attest.ReasonCertOnHold},
		{"activate", func(l *attest.Lifecycle) error { _, err := l.Activate(t.Context(), "REV1"); return err }, "good", "", "", attest.ReasonManaged},
	} {
		// The device API is another part of issue 7: change the
		// lifecycle on the stopped server's store.
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(filepath.Join(data, "scepca.db"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := attest.NewLifecycle(db, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := step.change(l); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		s = startServer(t, "--data", data)
		c.s = s
		wantOCSP(t, step.name+" (POST)", c.ocsp(t, certPath), certPath, step.status, step.reason)
		wantOCSP(t, step.name+" (GET)", c.ocspGET(t, certPath), certPath, step.status, step.reason)
		wantCRL(t, step.name, c.crl(t), serial, step.crl)
		wantContext(t, "verify(after "+step.name+")", attestOnce(s), step.attested)
	}
}

// opensslSerial is a serial number as openssl prints it: uppercase
// hexadecimal, whole bytes.
func opensslSerial(cert *x509.Certificate) string {
	return fmt.Sprintf("%X", cert.SerialNumber.Bytes())
}
