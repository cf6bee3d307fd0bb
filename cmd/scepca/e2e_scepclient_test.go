package main

// End-to-end tests with Debian's scepclient (package scep, micromdm scep
// 2.1.0): PROTOCOLS.md §1.12 and §5 items 1, 2, 9 and 10. scepclient always
// sends DES-CBC + SHA-1 by POST. Each run gets a fresh directory, because a
// failed run leaves self.pem behind and a later run would reuse it.

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
)

const (
	mimeCACert   = "application/x-x509-ca-cert"
	mimeCARACert = "application/x-x509-ca-ra-cert"
	aliceCN      = "alice managementAttestation UDID123"
)

// enrollScepclient runs scepclient in dir, wants exit 0 and returns the
// certificate it wrote.
func enrollScepclient(t *testing.T, dir string, r scepclientRun) *x509.Certificate {
	t.Helper()
	out, code := runScepclient(t, dir, r)
	if code != 0 {
		t.Fatalf("scepclient(%s) = exit %d, want 0\n%s", r.URL, code, out)
	}
	return readCertFile(t, filepath.Join(dir, "cert.pem"))
}

// verifyIssued checks that cert was signed by inter and chains to root for
// client authentication.
func verifyIssued(t *testing.T, cert, inter, root *x509.Certificate) {
	t.Helper()
	if !bytes.Equal(cert.RawIssuer, inter.RawSubject) {
		t.Errorf("issuer = %v, want %v", cert.Issuer, inter.Subject)
	}
	if err := cert.CheckSignatureFrom(inter); err != nil {
		t.Errorf("CheckSignatureFrom(intermediate) = %v, want nil", err)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inters.AddCert(inter)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("Verify(root) = %v, want nil", err)
	}
}

// rdns renders a raw Name as "type=value" in encoding order.
func rdns(t *testing.T, raw []byte) []string {
	t.Helper()
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
		t.Fatalf("parse name: %v", err)
	}
	short := map[string]string{"2.5.4.6": "C", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.3": "CN"}
	var out []string
	for _, rdn := range seq {
		for _, atv := range rdn {
			typ := short[atv.Type.String()]
			if typ == "" {
				typ = atv.Type.String()
			}
			out = append(out, typ+"="+atv.Value.(string))
		}
	}
	return out
}

func hasExtension(c *x509.Certificate, oid asn1.ObjectIdentifier) (found, critical bool) {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return true, e.Critical
		}
	}
	return false, false
}

// TestScepclientEnroll is PROTOCOLS.md §5 item 1: scepclient enrolls with
// the static challenge of the dev integration, and the issued certificate
// has our profile (§1.8); a wrong challenge gets badRequest.
func TestScepclientEnroll(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	s := startServer(t, "--log-level", "info")
	cas := listCAs(t, s)
	inter, root := cas["INTERMEDIATE"].Cert, cas["ROOT"].Cert
	certs, ct := getCACert(t, s.SCEPURL)
	if ct != mimeCACert || len(certs) != 1 || !certs[0].Equal(inter) {
		t.Fatalf("GetCACert = %s with %d certificates, want %s with the intermediate", ct, len(certs), mimeCACert)
	}
	fp := sha256Hex(inter)

	t.Run("static challenge", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		start := time.Now()
		cert := enrollScepclient(t, dir, scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN, Fingerprint: fp})

		want := []string{"C=US", "O=scep-client", "OU=MDM", "CN=" + aliceCN}
		if diff := cmp.Diff(want, rdns(t, cert.RawSubject)); diff != "" {
			t.Errorf("scepclient(%s) subject mismatch (-want +got):\n%s", s.SCEPURL, diff)
		}
		verifyIssued(t, cert, inter, root)
		if cert.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("KeyUsage = %#x, want digitalSignature only", cert.KeyUsage)
		}
		if found, critical := hasExtension(cert, asn1.ObjectIdentifier{2, 5, 29, 15}); !found || !critical {
			t.Errorf("keyUsage extension present %v, critical %v, want both", found, critical)
		}
		if !cmp.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(cert.UnknownExtKeyUsage) > 0 {
			t.Errorf("ExtKeyUsage = %v %v, want clientAuth only", cert.ExtKeyUsage, cert.UnknownExtKeyUsage)
		}
		if !cert.BasicConstraintsValid || cert.IsCA {
			t.Errorf("basicConstraints valid %v, CA %v, want a non-CA", cert.BasicConstraintsValid, cert.IsCA)
		}
		if len(cert.DNSNames)+len(cert.EmailAddresses)+len(cert.IPAddresses)+len(cert.URIs) > 0 {
			t.Errorf("SANs = %v %v %v %v, want none (the CN is never copied into a DNS SAN)", cert.DNSNames, cert.EmailAddresses, cert.IPAddresses, cert.URIs)
		}
		if len(cert.SubjectKeyId) == 0 {
			t.Error("no subjectKeyIdentifier")
		}
		if len(cert.AuthorityKeyId) == 0 || !bytes.Equal(cert.AuthorityKeyId, inter.SubjectKeyId) {
			t.Errorf("authorityKeyIdentifier = %x, want the intermediate's SKI %x", cert.AuthorityKeyId, inter.SubjectKeyId)
		}
		wantCRL := []string{s.URL + "/crl/" + cas["INTERMEDIATE"].ID + ".crl"}
		if !cmp.Equal(cert.CRLDistributionPoints, wantCRL) {
			t.Errorf("CRLDistributionPoints = %v, want %v", cert.CRLDistributionPoints, wantCRL)
		}
		if want := []string{s.URL + "/ocsp"}; !cmp.Equal(cert.OCSPServer, want) {
			t.Errorf("OCSPServer = %v, want %v", cert.OCSPServer, want)
		}
		if d := cert.NotAfter.Sub(cert.NotBefore); d < 364*24*time.Hour || d > 365*24*time.Hour {
			t.Errorf("validity = %v, want about 365 days", d)
		}
		if cert.NotBefore.After(start) || cert.NotBefore.Before(start.Add(-time.Hour)) {
			t.Errorf("NotBefore = %v, want shortly before %v", cert.NotBefore, start)
		}
		// 16 random bytes with the top bit cleared: a serial of 64 bits or
		// fewer would mean the entropy is missing (chance 2^-63 otherwise).
		if n := cert.SerialNumber; n.Sign() <= 0 || n.BitLen() <= 64 || len(n.Bytes()) > 20 {
			t.Errorf("serial %x: want positive, more than 64 bits, at most 20 octets", n)
		}
		if !samePublicKey(t, cert, filepath.Join(dir, "key.pem")) {
			t.Error("certificate public key differs from key.pem")
		}
	})

	t.Run("wrong challenge", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		out, code := runScepclient(t, dir, scepclientRun{URL: s.SCEPURL, Challenge: "wrong-" + s.Secret, CN: aliceCN, Fingerprint: fp})
		const want = "PKCSReq (19) request failed, failInfo: badRequest (2)"
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("scepclient(wrong challenge) = exit %d, want 1 and %q\n%s", code, want, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "cert.pem")); err == nil {
			t.Error("scepclient(wrong challenge) wrote cert.pem")
		}
	})
}

// TestScepclientRetry is PROTOCOLS.md §5 item 10 with a real client:
// scepclient's transactionID is a hash of its key, so a rerun with the same
// key (cert.pem deleted, so it is a PKCSReq again) is a retry of the same
// transaction and gets the same certificate, re-encrypted to the new
// throwaway signer certificate.
func TestScepclientRetry(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	s := startServer(t, "--log-level", "info")
	inter := listCAs(t, s)["INTERMEDIATE"].Cert
	dir := t.TempDir()
	run := scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN, Fingerprint: sha256Hex(inter)}
	first := enrollScepclient(t, dir, run)
	if err := os.Remove(filepath.Join(dir, "cert.pem")); err != nil {
		t.Fatal(err)
	}
	second := enrollScepclient(t, dir, run)
	if second.SerialNumber.Cmp(first.SerialNumber) != 0 || !second.Equal(first) {
		t.Errorf("scepclient(retry) serial = %x, want %x (the same certificate)", second.SerialNumber, first.SerialNumber)
	}
	logs := requestLogs(s, s.SCEPURL, "PKIOperation")
	if len(logs) != 2 {
		t.Fatalf("PKIOperation log lines = %d, want 2", len(logs))
	}
	if logs[0]["transaction_id"] != logs[1]["transaction_id"] || logs[1]["replayed"] != true || logs[1]["pki_status"] != "SUCCESS" {
		t.Errorf("retry logged %v after %v, want the same transaction_id, replayed, SUCCESS", logs[1], logs[0])
	}
}

// TestScepclientRenewal is PROTOCOLS.md §5 item 2: with cert.pem present
// scepclient sends a RenewalReq signed by the old certificate.
func TestScepclientRenewal(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	s := startServer(t, "--log-level", "info")
	inter := listCAs(t, s)["INTERMEDIATE"].Cert
	fp := sha256Hex(inter)
	off := createIntegration(t, s, "renewal off", nil)
	on := createIntegration(t, s, "renewal on", map[string]any{"renewal": true})
	const badRenewal = "RenewalReq (17) request failed, failInfo: badRequest (2)"

	t.Run("renewal on", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		run := scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN, Fingerprint: fp}
		old := enrollScepclient(t, dir, run)
		renewed := enrollScepclient(t, dir, run)
		if renewed.SerialNumber.Cmp(old.SerialNumber) == 0 {
			t.Errorf("scepclient(renewal) serial = %x, want a new serial", renewed.SerialNumber)
		}
		if !bytes.Equal(renewed.RawSubject, old.RawSubject) {
			t.Errorf("scepclient(renewal) subject = %v, want %v", renewed.Subject, old.Subject)
		}
		if err := renewed.CheckSignatureFrom(inter); err != nil {
			t.Errorf("renewed certificate: CheckSignatureFrom(intermediate) = %v", err)
		}
		var renewals int
		for _, ev := range requestLogs(s, s.SCEPURL, "PKIOperation") {
			if ev["message_type"] == "RenewalReq" && ev["pki_status"] == "SUCCESS" {
				renewals++
			}
		}
		if renewals != 1 {
			t.Errorf("RenewalReq SUCCESS log lines = %d, want 1", renewals)
		}
	})

	t.Run("renewal off", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		run := scepclientRun{URL: off.SCEPURL, Challenge: off.SecretKey, CN: aliceCN, Fingerprint: fp}
		old := enrollScepclient(t, dir, run)
		out, code := runScepclient(t, dir, run)
		if code != 1 || !strings.Contains(out, badRenewal) {
			t.Errorf("scepclient(%s) = exit %d, want 1 and %q\n%s", off.SCEPURL, code, badRenewal, out)
		}
		if kept := readCertFile(t, filepath.Join(dir, "cert.pem")); !kept.Equal(old) {
			t.Error("a refused renewal replaced cert.pem")
		}
	})

	t.Run("certificate of another integration", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		enrollScepclient(t, dir, scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN, Fingerprint: fp})
		out, code := runScepclient(t, dir, scepclientRun{URL: on.SCEPURL, Challenge: on.SecretKey, CN: aliceCN, Fingerprint: fp})
		if code != 1 || !strings.Contains(out, badRenewal) {
			t.Errorf("scepclient(%s) = exit %d, want 1 and %q\n%s", on.SCEPURL, code, badRenewal, out)
		}
	})
}

// TestScepclientECDSAIssuingCA is PROTOCOLS.md §5 item 9 for an ECDSA
// issuing CA: GetCACert returns a separate RSA RA with the intermediate,
// and enrollment goes through the RA.
func TestScepclientECDSAIssuingCA(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	s := startServer(t, "--key-type", "ecdsa")
	cas := listCAs(t, s)
	inter, root := cas["INTERMEDIATE"].Cert, cas["ROOT"].Cert
	if inter.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("intermediate key = %v, want ECDSA", inter.PublicKeyAlgorithm)
	}
	certs, ct := getCACert(t, s.SCEPURL)
	if ct != mimeCARACert || len(certs) != 2 {
		t.Fatalf("GetCACert = %s with %d certificates, want %s with RA and CA", ct, len(certs), mimeCARACert)
	}
	var ra *x509.Certificate
	for _, c := range certs {
		switch {
		case c.Equal(inter):
		case !c.IsCA:
			ra = c
		default:
			t.Errorf("GetCACert holds unexpected certificate %v", c.Subject)
		}
	}
	if ra == nil {
		t.Fatal("GetCACert holds no RA certificate")
	}
	if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; ra.KeyUsage&want != want || ra.PublicKeyAlgorithm != x509.RSA {
		t.Errorf("RA key usage %#x, key %v, want digitalSignature+keyEncipherment and RSA", ra.KeyUsage, ra.PublicKeyAlgorithm)
	}
	if err := ra.CheckSignatureFrom(inter); err != nil {
		t.Errorf("RA: CheckSignatureFrom(intermediate) = %v", err)
	}
	if c, ok := cas["RA"]; ok && !c.Cert.Equal(ra) {
		t.Error("the RA of GetCACert differs from the API's RA")
	}

	t.Run("scepclient with the RA fingerprint", func(t *testing.T) {
		t.Parallel()
		// scepclient encrypts to the GetCACert certificate whose SHA-256
		// matches -ca-fingerprint, so naming the RA selects it.
		cert := enrollScepclient(t, t.TempDir(), scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN, Fingerprint: sha256Hex(ra)})
		verifyIssued(t, cert, inter, root)
		if cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			t.Errorf("signature algorithm = %v, want ECDSA-SHA256", cert.SignatureAlgorithm)
		}
	})

	t.Run("scepclient without fingerprint", func(t *testing.T) {
		t.Parallel()
		// Without -ca-fingerprint scepclient 2.1.0 encrypts to every
		// GetCACert certificate and panics on the ECDSA one
		// (go.mozilla.org/pkcs7 encryptKey: "interface {} is
		// *ecdsa.PublicKey, not *rsa.PublicKey"). Recorded, not asserted:
		// it is the client's limitation, not a server answer.
		dir := t.TempDir()
		out, code := runScepclient(t, dir, scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN})
		if code == 0 {
			verifyIssued(t, readCertFile(t, filepath.Join(dir, "cert.pem")), inter, root)
			return
		}
		t.Logf("scepclient(RA+ECDSA CA, no -ca-fingerprint) = exit %d (client limitation): %s", code, matchingLine(out, "panic"))
	})

	t.Run("Go client", func(t *testing.T) {
		t.Parallel()
		if got := scepclient.Recipient(certs); !got.Equal(ra) {
			t.Fatalf("Recipient() = %v, want the RA", got.Subject)
		}
		key := testpki.NewRSAKey(t, 2048)
		csr, err := scepclient.CSR(key, pkix.Name{CommonName: aliceCN}, s.Secret)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := scepclient.SelfSigned(key, "SCEP SIGNER")
		if err != nil {
			t.Fatal(err)
		}
		params := cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAOAEP, OAEPHash: crypto.SHA256}
		r, err := (&scepclient.Client{URL: s.SCEPURL}).Do(t.Context(), &scepclient.Message{
			Type: scepclient.TypePKCSReq, TransactionID: randomTransactionID(t),
			Signer: signer, Key: key, Recipient: ra, Content: csr, Params: params,
		})
		if err != nil {
			t.Fatalf("Do(PKCSReq via RA) = %v", err)
		}
		if r.Status != scepclient.StatusSuccess || len(r.Certificates) != 1 {
			t.Fatalf("Do(PKCSReq via RA) = status %s failInfo %s, %d certificates, want SUCCESS with one", r.Status, r.FailInfo, len(r.Certificates))
		}
		if !r.Signer.Equal(ra) {
			t.Errorf("CertRep signer = %v, want the RA", r.Signer.Subject)
		}
		if r.EnvelopeParams != params {
			t.Errorf("reply envelope = %v, want %v", r.EnvelopeParams, params)
		}
		verifyIssued(t, r.Certificates[0], inter, root)
	})
}

// TestScepclientIssuerAndChain is PROTOCOLS.md §1.3 "test both": an
// issuerAndChain integration answers GetCACert with a degenerate SignedData
// holding the intermediate and the root, and scepclient still enrolls.
func TestScepclientIssuerAndChain(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	s := startServer(t)
	cas := listCAs(t, s)
	inter, root := cas["INTERMEDIATE"].Cert, cas["ROOT"].Cert
	in := createIntegration(t, s, "chain", map[string]any{"caChain": "issuerAndChain"})
	certs, ct := getCACert(t, in.SCEPURL)
	if ct != mimeCARACert || len(certs) != 2 || !(certs[0].Equal(inter) && certs[1].Equal(root) || certs[0].Equal(root) && certs[1].Equal(inter)) {
		t.Fatalf("GetCACert = %s with %d certificates, want %s with intermediate and root", ct, len(certs), mimeCARACert)
	}
	for _, tc := range []struct {
		name        string
		fingerprint string
	}{
		// Without a fingerprint scepclient encrypts to both certificates
		// (two recipientInfos); the server finds the one it holds.
		{"no fingerprint", ""},
		{"intermediate fingerprint", sha256Hex(inter)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cert := enrollScepclient(t, t.TempDir(), scepclientRun{URL: in.SCEPURL, Challenge: in.SecretKey, CN: aliceCN, Fingerprint: tc.fingerprint})
			verifyIssued(t, cert, inter, root)
		})
	}
}

// randomTransactionID returns a fresh transactionID.
func randomTransactionID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// matchingLine returns the first line of s containing substr, or s's last
// line, for logs.
func matchingLine(s, substr string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, l := range lines {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return lines[len(lines)-1]
}
