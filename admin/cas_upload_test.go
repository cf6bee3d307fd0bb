package admin_test

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/testpki"
)

// TestUploadCA: bring your own CA. The body is the certificate, PEM or
// DER, whatever the Content-Type; everything else is refused with a 400
// naming it, including a real PKCS #12 and PKCS #7 made by openssl.
// Uploaded intermediates are listed, offered as nonce issuers and trusted
// by the verifier; DELETE removes trust; our own CAs cannot be deleted.
func TestUploadCA(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	ctx := t.Context()
	openssl := requireOpenSSL(t)
	dir := t.TempDir()

	byo := testpki.CA(t)
	interPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: byo.Intermediate.Raw})
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: byo.Root.Raw})
	keyDER, err := x509.MarshalPKCS8PrivateKey(byo.IntermediateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(args ...string) []byte {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, openssl, args...).Output()
		if err != nil {
			t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	interFile, keyFile := write("inter.pem", interPEM), write("inter.key", keyPEM)
	p12 := filepath.Join(dir, "inter.p12")
	run("pkcs12", "-export", "-in", interFile, "-inkey", keyFile, "-passout", "pass:secret", "-out", p12)
	p12DER, err := os.ReadFile(p12)
	if err != nil {
		t.Fatal(err)
	}
	p7PEM := run("crl2pkcs7", "-nocrl", "-certfile", interFile)
	p7DER := run("crl2pkcs7", "-nocrl", "-certfile", interFile, "-outform", "DER")
	leafKey := testpki.NewECKey(t, elliptic.P256())
	leaf := byo.Issue(t, leafKey.Public(), "leaf")
	expiredCA := testpki.SelfSigned(t, leafKey, "expired CA", testpki.WithTemplate(func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	}))
	noCertSign := testpki.SelfSigned(t, leafKey, "no certSign", testpki.WithTemplate(func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageDigitalSignature
	}))
	csr := testpki.CSR(t, leafKey, pkix.Name{CommonName: "csr"}, "")

	tests := []struct {
		name   string
		body   []byte
		ctype  string
		status int
		detail string
	}{
		{"PKCS #12 by openssl", p12DER, "application/x-pkcs12", http.StatusBadRequest, "PKCS #12/PFX"},
		{"PKCS #7 PEM by openssl", p7PEM, "", http.StatusBadRequest, "PKCS #7"},
		{"PKCS #7 DER by openssl", p7DER, "", http.StatusBadRequest, "PKCS #7"},
		{"a device certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), "", http.StatusBadRequest, "not a CA certificate"},
		{"garbage", []byte("this is not a certificate"), "", http.StatusBadRequest, "neither PEM nor a DER X.509 certificate"},
		{"empty", nil, "", http.StatusBadRequest, "empty body"},
		{"private key", keyPEM, "", http.StatusBadRequest, "never upload keys"},
		{"DER private key", keyDER, "", http.StatusBadRequest, "never upload keys"},
		{"bundle", append(append([]byte{}, interPEM...), rootPEM...), "", http.StatusBadRequest, "holds 2 certificates"},
		{"CSR", csr, "", http.StatusBadRequest, "certificate request"},
		{"PEM of garbage", []byte("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"), "", http.StatusBadRequest, "does not parse"},
		{"broken PEM", []byte("-----BEGIN CERTIFICATE-----\n!!!\n"), "", http.StatusBadRequest, "malformed PEM"},
		{"base64 without armour", []byte(strings.Repeat("QUFB", 40)), "", http.StatusBadRequest, "base64 without PEM armour"},
		{"expired CA", expiredCA.Raw, "", http.StatusBadRequest, "expired"},
		{"CA without keyCertSign", noCertSign.Raw, "", http.StatusBadRequest, "keyCertSign"},
		{"too large", make([]byte, 65<<10), "", http.StatusRequestEntityTooLarge, "larger than"},
	}
	for _, tc := range tests {
		resp, b := f.raw(t, http.MethodPost, "/api/v1/certificate-authorities", tc.body, tc.ctype)
		wantProblem(t, "upload "+tc.name, resp, b, tc.status, tc.detail)
	}

	// PEM as curl --data-binary sends it (form Content-Type), then DER.
	resp, b := f.raw(t, http.MethodPost, "/api/v1/certificate-authorities", interPEM, "application/x-www-form-urlencoded")
	var up admin.CertificateAuthority
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &up) != nil || up.Role != "UPLOADED" || up.KeyOnline ||
		up.Subject != byo.Intermediate.Subject.String() || resp.Header.Get("Location") != "/api/v1/certificate-authorities/"+up.ID {
		t.Fatalf("upload PEM = %d %s (Location %q), want 201 with an UPLOADED record", resp.StatusCode, b, resp.Header.Get("Location"))
	}
	resp, b = f.raw(t, http.MethodPost, "/api/v1/certificate-authorities", byo.Intermediate.Raw, "application/pkix-cert")
	wantProblem(t, "upload the same certificate as DER", resp, b, http.StatusConflict, up.ID)
	resp, b = f.raw(t, http.MethodPost, "/api/v1/certificate-authorities", byo.Root.Raw, "")
	var upRoot admin.CertificateAuthority
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &upRoot) != nil {
		t.Fatalf("upload DER root = %d %s, want 201", resp.StatusCode, b)
	}
	resp, b = f.raw(t, http.MethodPost, "/api/v1/certificate-authorities", f.ca.Intermediate().Raw, "")
	wantProblem(t, "upload our own intermediate", resp, b, http.StatusConflict, "INTERMEDIATE")
	if !strings.Contains(f.audit.String(), `"msg":"certificate_authority.upload"`) {
		t.Errorf("audit log lacks certificate_authority.upload:\n%s", f.audit.String())
	}

	// Listed, offered as an issuer, trusted (its CRL decides; this leaf has
	// no distribution point, so the verifier fails closed with a reason
	// that proves the issuer was trusted).
	_, list := f.do(t, http.MethodGet, "/api/v1/certificate-authorities", "")
	if !strings.Contains(string(list), up.ID) {
		t.Errorf("list = %s, want the uploaded CA", list)
	}
	n, err := f.client().Nonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Issuers) != 3 || n.Issuers[0].ID != f.ca.IntermediateID() {
		t.Errorf("nonce issuers = %+v, want ours first, then the two uploaded", n.Issuers)
	}
	dc, err := f.client().AttestDesktop(ctx, leafKey, leaf, "byo-1", attest.PlatformWindows, "")
	if err != nil || dc.Reason != attest.ReasonCRLUnavailable {
		t.Errorf("AttestDesktop(uploaded issuer) = %+v, %v, want %s", dc, err, attest.ReasonCRLUnavailable)
	}

	// Delete: trust ends at once; our own CAs are refused.
	resp, b = f.raw(t, http.MethodDelete, "/api/v1/certificate-authorities/"+up.ID, nil, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE uploaded = %d %s, want 204", resp.StatusCode, b)
	}
	dc, err = f.client().AttestDesktop(ctx, leafKey, leaf, "byo-1", attest.PlatformWindows, "")
	if err != nil || dc.Reason != attest.ReasonUntrustedIssuer {
		t.Errorf("AttestDesktop(after delete) = %+v, %v, want %s", dc, err, attest.ReasonUntrustedIssuer)
	}
	resp, b = f.raw(t, http.MethodDelete, "/api/v1/certificate-authorities/"+up.ID, nil, "")
	wantProblem(t, "DELETE uploaded again", resp, b, http.StatusNotFound, up.ID)
	resp, b = f.raw(t, http.MethodDelete, "/api/v1/certificate-authorities/"+f.ca.IntermediateID(), nil, "")
	wantProblem(t, "DELETE our intermediate", resp, b, http.StatusConflict, "INTERMEDIATE")
	resp, b = f.raw(t, http.MethodDelete, "/api/v1/certificate-authorities/"+f.ca.RootID(), nil, "")
	wantProblem(t, "DELETE our root", resp, b, http.StatusConflict, "ROOT")
	if !strings.Contains(f.audit.String(), `"msg":"certificate_authority.delete"`) {
		t.Errorf("audit log lacks certificate_authority.delete:\n%s", f.audit.String())
	}
}
