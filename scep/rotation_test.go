package scep_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/scep"
	"github.com/scepca/scepca/store"
)

// TestRotation walks a CA rotation through SCEP: GetNextCACert and its
// GetCACaps keyword exist only while a successor is staged; the answer is a
// SignedData by the current CA/RA over the successor, which openssl
// verifies and reads; after activation new certificates come from the
// successor and a certificate of the retired CA still renews.
func TestRotation(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed (make deps)")
	}
	for _, keyType := range []string{ca.KeyTypeRSA, ca.KeyTypeECDSA} {
		t.Run(keyType, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			var opts []fixtureOption
			if keyType == ca.KeyTypeECDSA {
				opts = append(opts, withECDSA())
			}
			f := newFixture(t, opts...)
			e := f.addEndpoint(t, func(in *store.Integration) { in.Renewal = true })
			first, oldCert := e.enroll(t)
			oldInter := f.ca.Intermediate()

			caps := func() []string {
				t.Helper()
				c, err := e.client("").GetCACaps(ctx)
				if err != nil {
					t.Fatalf("GetCACaps() = %v", err)
				}
				return c
			}
			if slices.Contains(caps(), "GetNextCACert") {
				t.Errorf("GetCACaps() before rotation lists GetNextCACert")
			}
			if resp, _ := e.httpGet(t, "", "operation=GetNextCACert"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GetNextCACert before rotation = %d, want 404", resp.StatusCode)
			}

			rec, err := f.ca.Rotate(ctx, ca.RotateOptions{})
			if err != nil {
				t.Fatalf("Rotate() = %v", err)
			}
			got := caps()
			if !slices.Contains(got, "GetNextCACert") {
				t.Errorf("GetCACaps() during the overlap = %q, want GetNextCACert", got)
			}
			if body := scep.Capabilities(e.integ, true); strings.Join(got, "\n")+"\n" != body {
				t.Errorf("GetCACaps() body differs from Capabilities(next) = %q", body)
			}
			resp, body := e.httpGet(t, "", "operation=GetNextCACert")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-x509-next-ca-cert" {
				t.Fatalf("GetNextCACert = %d %q, want 200 application/x-x509-next-ca-cert", resp.StatusCode, resp.Header.Get("Content-Type"))
			}

			// Go's reading: signed by the current recipient, content the successor.
			p7, err := pkcs7.Parse(body)
			if err != nil {
				t.Fatalf("pkcs7.Parse(GetNextCACert) = %v", err)
			}
			if err := p7.Verify(); err != nil {
				t.Errorf("GetNextCACert signature: %v", err)
			}
			if signer := p7.GetOnlySigner(); signer == nil || !signer.Equal(f.recipient) {
				t.Errorf("GetNextCACert signer = %v, want the current recipient %q", signer, f.recipient.Subject)
			}
			inner, err := pkcs7.Parse(p7.Content)
			if err != nil {
				t.Fatalf("pkcs7.Parse(GetNextCACert content) = %v", err)
			}
			if !slices.EqualFunc(inner.Certificates, f.ca.Next(), func(x, y *x509.Certificate) bool { return x.Equal(y) }) {
				t.Errorf("GetNextCACert certificates differ from Next()")
			}

			// openssl's reading: the signature verifies to our root, the
			// content lists the successor.
			dir := t.TempDir()
			in, innerOut, caFile := filepath.Join(dir, "next.p7"), filepath.Join(dir, "inner.p7"), filepath.Join(dir, "ca.pem")
			var chain bytes.Buffer
			for _, c := range f.ca.Chain()[len(f.ca.Chain())-2:] { // intermediate and root
				_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
			}
			if err := os.WriteFile(in, body, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(caFile, chain.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			outer, err := exec.CommandContext(ctx, "openssl", "pkcs7", "-inform", "DER", "-in", in, "-print_certs", "-noout").CombinedOutput()
			if err != nil || !strings.Contains(string(outer), f.recipient.Subject.CommonName) {
				t.Errorf("openssl pkcs7 -print_certs of GetNextCACert = %v\n%s\nwant the signer %q", err, outer, f.recipient.Subject.CommonName)
			}
			if out, err := exec.CommandContext(ctx, "openssl", "cms", "-verify", "-inform", "DER", "-in", in,
				"-CAfile", caFile, "-purpose", "any", "-binary", "-out", innerOut).CombinedOutput(); err != nil {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			out, err := exec.CommandContext(ctx, "openssl", "pkcs7", "-inform", "DER", "-in", innerOut, "-print_certs", "-noout").CombinedOutput()
			if err != nil {
				t.Fatalf("openssl pkcs7 -print_certs: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Intermediate Authority G2") {
				t.Errorf("openssl pkcs7 -print_certs = %s, want the G2 intermediate", out)
			}

			if _, err := f.ca.Activate(ctx, rec.ID, "test"); err != nil {
				t.Fatalf("Activate() = %v", err)
			}
			if slices.Contains(caps(), "GetNextCACert") {
				t.Errorf("GetCACaps() after activation lists GetNextCACert")
			}
			if resp, _ := e.httpGet(t, "", "operation=GetNextCACert"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GetNextCACert after activation = %d, want 404", resp.StatusCode)
			}
			certs, _, err := e.client("").GetCACert(ctx)
			if err != nil {
				t.Fatalf("GetCACert() = %v", err)
			}
			newRecipient, _ := f.ca.Recipient()
			if !slices.ContainsFunc(certs, newRecipient.Equal) || slices.ContainsFunc(certs, oldInter.Equal) {
				t.Errorf("GetCACert() after activation does not serve the successor alone")
			}

			// A client that fetched GetCACert before the activation encrypts
			// to the previous recipient: it is still served, and its CertRep
			// is signed by that recipient, the one it knows.
			late := e.message(t, withKey(testKey(t, 2)), withRecipient(f.recipient))
			certRep, err := f.svc.PKIOperation(ctx, e.integ, marshal(t, late))
			if err != nil {
				t.Fatalf("PKIOperation(encrypted to the retired recipient) = %v", err)
			}
			lateCert := wantSuccess(t, late, checkReply(t, late, certRep))
			if lateCert.CheckSignatureFrom(f.ca.Intermediate()) != nil {
				t.Errorf("certificate for a request to the retired recipient is not from the successor")
			}
			if rep, err := pkcs7.Parse(certRep); err != nil || !rep.GetOnlySigner().Equal(f.recipient) {
				t.Errorf("CertRep to the retired recipient is not signed by it (%v)", err)
			}

			_, newCert := e.enroll(t, withKey(testKey(t, 1)), withRecipient(newRecipient))
			if !bytes.Equal(newCert.RawIssuer, f.ca.Intermediate().RawSubject) || newCert.CheckSignatureFrom(f.ca.Intermediate()) != nil {
				t.Errorf("certificate issued after activation is not from the successor (issuer %q)", newCert.Issuer)
			}
			// GetCert and GetCRL naming the retired intermediate are
			// answered: the certificate it issued, and its own CRL.
			gc := e.message(t, withType(scepclient.TypeGetCert), withSigner(oldCert, first.Key),
				withContent(issuerAndSerial(t, oldInter, oldCert.SerialNumber)), withRecipient(newRecipient))
			if got := wantSuccess(t, gc, e.do(t, gc, "")); !got.Equal(oldCert) {
				t.Errorf("GetCert(retired issuer) = serial %s, want %s", serialOf(got), serialOf(oldCert))
			}
			gl := e.message(t, withType(scepclient.TypeGetCRL), withSigner(oldCert, first.Key),
				withContent(issuerAndSerial(t, oldInter, oldCert.SerialNumber)), withRecipient(newRecipient))
			if r := e.do(t, gl, ""); r.Status != scepclient.StatusSuccess || len(r.CRLs) != 1 {
				t.Errorf("GetCRL(retired issuer) = %s/%s with %d CRLs, want SUCCESS with 1", statusName(r.Status), failName(r.FailInfo), len(r.CRLs))
			} else if crl, err := x509.ParseRevocationList(r.CRLs[0]); err != nil || crl.CheckSignatureFrom(oldInter) != nil {
				t.Errorf("GetCRL(retired issuer) CRL is not signed by the retired intermediate (%v)", err)
			}

			// The retired CA's certificate still authenticates a renewal.
			m := e.message(t, withType(scepclient.TypeRenewalReq), withTxID(first.TransactionID),
				withSigner(oldCert, first.Key), withChallenge(""), withRecipient(newRecipient))
			renewed := wantSuccess(t, m, e.do(t, m, ""))
			if renewed.CheckSignatureFrom(f.ca.Intermediate()) != nil {
				t.Errorf("renewal of a retired CA's certificate was not issued by the successor")
			}
		})
	}
}
