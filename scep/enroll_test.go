package scep_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/smallstep/pkcs7"

	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
)

var digestOIDs = map[crypto.Hash]asn1.ObjectIdentifier{
	crypto.SHA1:   pkcs7.OIDDigestAlgorithmSHA1,
	crypto.SHA256: pkcs7.OIDDigestAlgorithmSHA256,
	crypto.SHA384: pkcs7.OIDDigestAlgorithmSHA384,
	crypto.SHA512: pkcs7.OIDDigestAlgorithmSHA512,
}

// intuneURI is the SID URI SAN Intune CSRs carry since KB5014754.
const intuneURI = "tag:microsoft.com,2022-09-14:sid:S-1-5-21-1-2-3"

// TestEnrollMatrix enrolls with every content cipher × digest × key
// transport (PROTOCOLS.md §1.6), each by GET and by POST, and checks that
// the CertRep mirrors the request's algorithms and that GET and POST
// answer alike.
func TestEnrollMatrix(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	ciphers := []cms.ContentEncryption{cms.DESCBC, cms.DESEDE3CBC, cms.AES128CBC, cms.AES192CBC, cms.AES256CBC, cms.AES128GCM}
	digests := []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512}
	transports := []struct {
		name string
		kt   cms.KeyTransport
		hash crypto.Hash
	}{
		{"pkcs1v15", cms.RSAPKCS1v15, 0},
		{"oaep-sha1", cms.RSAOAEP, crypto.SHA1},
		{"oaep-sha256", cms.RSAOAEP, crypto.SHA256},
	}
	type matrixCase struct {
		name   string
		params cms.Params
		digest crypto.Hash
	}
	var tests []matrixCase
	for _, c := range ciphers {
		for _, d := range digests {
			for _, kt := range transports {
				tests = append(tests, matrixCase{
					name:   fmt.Sprintf("%v/%v/%s", c, d, kt.name),
					params: cms.Params{ContentEncryption: c, KeyTransport: kt.kt, OAEPHash: kt.hash},
					digest: d,
				})
			}
		}
	}
	// Beyond the matrix: AES-GCM the standard way (AuthEnvelopedData, as
	// OpenSSL writes it) and OAEP with SHA-512.
	tests = append(tests,
		matrixCase{"aes256-gcm/authenveloped", cms.Params{ContentEncryption: cms.AES256GCM, KeyTransport: cms.RSAPKCS1v15, Authenticated: true}, crypto.SHA256},
		matrixCase{"aes256-cbc/oaep-sha512/sha384", cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAOAEP, OAEPHash: crypto.SHA512}, crypto.SHA384},
	)
	// One CSR and signer for all cells (they differ by transactionID), to
	// keep the matrix fast; the CSR carries an Intune SID URI SAN.
	key := testKey(t, 0)
	signer := testpki.SelfSigned(t, key, "SCEP SIGNER")
	csr := testpki.CSR(t, key, defaultSubject, e.secret, testpki.WithURIs(intuneURI))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			replies := map[string]*scepclient.Reply{}
			for _, method := range []string{http.MethodPost, http.MethodGet} {
				m := e.message(t, withSigner(signer, key), withContent(csr), withParams(tc.params), withDigest(tc.digest))
				r := e.do(t, m, method)
				cert := wantSuccess(t, m, r)
				if r.EnvelopeParams != tc.params {
					t.Errorf("PKIOperation(%s %s) envelope = %v, want %v", method, tc.name, r.EnvelopeParams, tc.params)
				}
				if want := digestOIDs[tc.digest]; !r.DigestOID.Equal(want) {
					t.Errorf("PKIOperation(%s %s) digest = %v, want %v", method, tc.name, r.DigestOID, want)
				}
				checkIssued(t, e, csr, cert)
				replies[method] = r
			}
			get, post := replies[http.MethodGet], replies[http.MethodPost]
			if get.Status != post.Status || get.EnvelopeParams != post.EnvelopeParams || !get.DigestOID.Equal(post.DigestOID) ||
				!bytes.Equal(get.Signer.Raw, post.Signer.Raw) {
				t.Errorf("PKIOperation(%s) GET = %s %v %v, POST = %s %v %v, want alike", tc.name,
					statusName(get.Status), get.EnvelopeParams, get.DigestOID, statusName(post.Status), post.EnvelopeParams, post.DigestOID)
			}
			g, p := get.Certificates[0], post.Certificates[0]
			if !bytes.Equal(g.RawSubject, p.RawSubject) || g.KeyUsage != p.KeyUsage || !slices.Equal(g.ExtKeyUsage, p.ExtKeyUsage) ||
				!bytes.Equal(g.RawSubjectPublicKeyInfo, p.RawSubjectPublicKeyInfo) {
				t.Errorf("PKIOperation(%s) GET and POST certificates differ in profile", tc.name)
			}
		})
	}
}

// checkIssued checks the certificate profile of PROTOCOLS.md §1.8 against
// the CSR it answers.
func checkIssued(t testing.TB, e *endpoint, csrDER []byte, cert *x509.Certificate) {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatalf("ParseCertificateRequest() = %v", err)
	}
	if !bytes.Equal(cert.RawSubject, csr.RawSubject) {
		t.Errorf("issued subject = %v, want the CSR's %v", cert.Subject, csr.Subject)
	}
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
		t.Errorf("issued public key differs from the CSR's")
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("issued key usage = %#x, want digitalSignature only", cert.KeyUsage)
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, cert.ExtKeyUsage); diff != "" || len(cert.UnknownExtKeyUsage) > 0 {
		t.Errorf("issued extended key usage mismatch (-want +got):\n%s", diff)
	}
	var wantURIs, gotURIs []string
	for _, u := range csr.URIs {
		wantURIs = append(wantURIs, u.String())
	}
	for _, u := range cert.URIs {
		gotURIs = append(gotURIs, u.String())
	}
	if diff := cmp.Diff(wantURIs, gotURIs); diff != "" {
		t.Errorf("issued URI SANs mismatch (-want +got):\n%s", diff)
	}
	if !slices.Equal(cert.DNSNames, csr.DNSNames) {
		t.Errorf("issued DNS SANs = %q, want the CSR's %q (never one made from the CN)", cert.DNSNames, csr.DNSNames)
	}
	if cert.IsCA {
		t.Errorf("issued certificate is a CA")
	}
	if err := cert.CheckSignatureFrom(e.f.ca.Intermediate()); err != nil {
		t.Errorf("issued certificate not signed by the intermediate: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:         pool(e.f.ca.Root()),
		Intermediates: pool(e.f.ca.Intermediate()),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("issued certificate does not chain to the root: %v", err)
	}
	rec, err := e.f.store.GetCertificate(t.Context(), serialOf(cert))
	if err != nil {
		t.Fatalf("GetCertificate(%s) = %v", serialOf(cert), err)
	}
	if rec.IntegrationID != e.integ.ID || !bytes.Equal(rec.DER, cert.Raw) {
		t.Errorf("stored certificate %s: integration %q, same DER %v; want %q, true", rec.Serial, rec.IntegrationID, bytes.Equal(rec.DER, cert.Raw), e.integ.ID)
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// TestIssuedProfile checks the certificate built from an Intune-style CSR:
// the URI SAN is kept and a DNS-looking CN does not become a DNS SAN.
func TestIssuedProfile(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	tests := []struct {
		name    string
		subject string
		opts    []testpki.CSROption
	}{
		{"intune sid uri", "bob ManagementAttestation 6d4c0a8e", []testpki.CSROption{testpki.WithURIs(intuneURI)}},
		{"dns-like cn", "host.example.com", nil},
		{"requested dns san kept", "carol managementAttestation UDID7", []testpki.CSROption{testpki.WithDNSNames("carol.example.com")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			subject := defaultSubject
			subject.CommonName = tc.subject
			m, cert := e.enroll(t, withSubject(subject), withCSROptions(tc.opts...))
			checkIssued(t, e, m.Content, cert)
		})
	}
}

// TestEnrollECDSACA enrolls against an ECDSA issuing CA with its RSA RA:
// the RA decrypts and signs the CertRep, the intermediate signs the
// certificate.
func TestEnrollECDSACA(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, withECDSA())
	for _, p := range []cms.Params{
		{ContentEncryption: cms.DESCBC, KeyTransport: cms.RSAPKCS1v15},
		{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAOAEP, OAEPHash: crypto.SHA256},
	} {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			m := e.message(t, withParams(p), withCSROptions(testpki.WithURIs(intuneURI)))
			r := e.do(t, m, "")
			cert := wantSuccess(t, m, r)
			if !bytes.Equal(r.Signer.Raw, e.f.ca.RA().Raw) {
				t.Errorf("PKIOperation(%s) CertRep signer = %v, want the RA", describe(m), r.Signer.Subject)
			}
			if r.EnvelopeParams != p {
				t.Errorf("PKIOperation(%s) envelope = %v, want %v", describe(m), r.EnvelopeParams, p)
			}
			checkIssued(t, e, m.Content, cert)
		})
	}
}

// TestEnrollWindowsSigner enrolls with a Windows-style signer certificate
// whose AuthorityKeyIdentifier is marked critical (Go's x509 parser rejects
// it).
func TestEnrollWindowsSigner(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	m := e.message(t, withSignerOptions(testpki.WithCriticalAKI()),
		withParams(cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAOAEP, OAEPHash: crypto.SHA256}))
	if _, err := x509.ParseCertificate(m.Signer.Raw); err == nil {
		t.Fatal("signer with a critical AKI parses with crypto/x509; the test vector is wrong")
	}
	r := e.do(t, m, "")
	checkIssued(t, e, m.Content, wantSuccess(t, m, r))
}

// TestEnrollBER enrolls with the whole pkiMessage, and with the envelope
// only, re-encoded as indefinite-length BER (Apple, openssl cms -stream).
func TestEnrollBER(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	tests := []struct {
		name  string
		build func(t *testing.T) (*scepclient.Message, []byte)
	}{
		{"whole message", func(t *testing.T) (*scepclient.Message, []byte) {
			m := e.message(t)
			return m, testpki.Indefinite(t, marshal(t, m))
		}},
		{"envelope", func(t *testing.T) (*scepclient.Message, []byte) {
			env := testpki.Indefinite(t, mustEncrypt(t, testpki.CSR(t, testKey(t, 0), defaultSubject, e.secret), e.f.recipient))
			m := e.message(t, withEnvelope(env))
			return m, marshal(t, m)
		}},
		{"envelope and message", func(t *testing.T) (*scepclient.Message, []byte) {
			env := testpki.Indefinite(t, mustEncrypt(t, testpki.CSR(t, testKey(t, 0), defaultSubject, e.secret), e.f.recipient))
			m := e.message(t, withEnvelope(env))
			return m, testpki.Indefinite(t, marshal(t, m))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, raw := tc.build(t)
			for _, method := range []string{http.MethodPost, http.MethodGet} {
				wantSuccess(t, m, e.send(t, m, raw, method))
			}
		})
	}
}

// TestIntegrationSettings enrolls under per-integration settings: a minimum
// cipher admits what meets it, and ValidityDays sets the lifetime.
func TestIntegrationSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		edit         func(*store.Integration)
		params       cms.Params
		wantLifetime time.Duration // 0: the server default
	}{
		{
			name:   "min cipher aes, aes-256 request",
			edit:   func(in *store.Integration) { in.MinCipher = "aes" },
			params: cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAPKCS1v15},
		},
		{
			name:   "min cipher 3des, 3des request",
			edit:   func(in *store.Integration) { in.MinCipher = "3des" },
			params: cms.Params{ContentEncryption: cms.DESEDE3CBC, KeyTransport: cms.RSAPKCS1v15},
		},
		{
			name:   "min cipher des, des request",
			edit:   func(in *store.Integration) { in.MinCipher = "des" },
			params: cms.Params{ContentEncryption: cms.DESCBC, KeyTransport: cms.RSAPKCS1v15},
		},
		{
			name:         "validity 30 days",
			edit:         func(in *store.Integration) { in.ValidityDays = 30 },
			params:       defaultParams,
			wantLifetime: 30 * 24 * time.Hour,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, withIntegration(tc.edit))
			m, cert := e.enroll(t, withParams(tc.params))
			if tc.wantLifetime != 0 {
				if got := cert.NotAfter.Sub(cert.NotBefore); got != tc.wantLifetime {
					t.Errorf("PKIOperation(%s) lifetime = %v, want %v", describe(m), got, tc.wantLifetime)
				}
			}
		})
	}
}
