package ca

import (
	"bytes"
	"context"
	"crypto/sha1" // the SKI under test is SHA-1 by definition
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scepca/scepca/store"
)

var (
	oidCN  = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO   = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU  = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidKU  = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidBC  = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidEKU = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidCDP = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidAIA = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
)

// rawName encodes an RDN sequence with the given string tags, one
// attribute per RDN, exactly as written (Go would re-encode a printable CN
// as PrintableString).
func rawName(t testing.TB, attrs ...struct {
	oid asn1.ObjectIdentifier
	tag int
	val string
},
) []byte {
	t.Helper()
	var seq pkix.RDNSequence
	for _, a := range attrs {
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{
			Type: a.oid, Value: asn1.RawValue{Tag: a.tag, Bytes: []byte(a.val)},
		}})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatalf("asn1.Marshal(name) = %v", err)
	}
	return der
}

type attr = struct {
	oid asn1.ObjectIdentifier
	tag int
	val string
}

// requestedExtensions asks for what the profile must ignore: keyCertSign,
// serverAuth and CA:true.
func requestedExtensions(t testing.TB) []pkix.Extension {
	t.Helper()
	ku, err1 := asn1.Marshal(asn1.BitString{Bytes: []byte{0x06}, BitLength: 7})
	eku, err2 := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}})
	bc, err3 := asn1.Marshal(struct{ IsCA bool }{true})
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("asn1.Marshal() = %v", err)
	}
	return []pkix.Extension{{Id: oidKU, Critical: true, Value: ku}, {Id: oidEKU, Value: eku}, {Id: oidBC, Critical: true, Value: bc}}
}

func extension(c *x509.Certificate, oid asn1.ObjectIdentifier) (pkix.Extension, bool) {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return e, true
		}
	}
	return pkix.Extension{}, false
}

// sha1SKI recomputes RFC 5280 method 1 from the certificate's own SPKI.
func sha1SKI(t testing.TB, c *x509.Certificate) []byte {
	t.Helper()
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatalf("asn1.Unmarshal(SPKI) = %v", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:]
}

func TestIssueProfile(t *testing.T) {
	t.Parallel()
	intuneSID := &url.URL{Scheme: "tag", Opaque: "microsoft.com,2022-09-14:sid:S-1-5-21-1004336348-1177238915-682003330-512"}
	tests := []struct {
		name     string
		caType   string
		key      string
		csr      x509.CertificateRequest
		wantUser string
		wantDev  string
	}{
		{
			name: "Intune RSA CSR with URI SAN, RSA CA", caType: KeyTypeRSA, key: "rsa2048",
			csr: x509.CertificateRequest{
				RawSubject: rawName(t, attr{oidO, asn1.TagPrintableString, "Example"}, attr{oidOU, asn1.TagUTF8String, "Devices"},
					attr{oidCN, asn1.TagUTF8String, "alice@example.com ManagementAttestation 6f1c1a2e-1b0e-4a8e-9d1f-3b5c7e9a0d11"}),
				URIs: []*url.URL{intuneSID},
			},
			wantUser: "alice@example.com", wantDev: "6f1c1a2e-1b0e-4a8e-9d1f-3b5c7e9a0d11",
		},
		{
			name: "Workspace ONE P-256 CSR with DNS, email and IP SANs, ECDSA CA", caType: KeyTypeECDSA, key: "p256",
			csr: x509.CertificateRequest{
				Subject:        pkix.Name{CommonName: "bob managementAttestation UDID-0001"},
				DNSNames:       []string{"laptop-7.corp.example.com"},
				EmailAddresses: []string{"bob@example.com"},
				IPAddresses:    []net.IP{net.ParseIP("192.0.2.7").To4(), net.ParseIP("2001:db8::7")},
				URIs:           []*url.URL{intuneSID},
			},
			wantUser: "bob", wantDev: "UDID-0001",
		},
		{
			name: "hostname CN without SAN is not copied into a DNS SAN", caType: KeyTypeRSA, key: "p384",
			csr: x509.CertificateRequest{Subject: pkix.Name{CommonName: "device.example.com"}},
		},
		{
			name: "RSA-4096 CSR, ECDSA CA", caType: KeyTypeECDSA, key: "rsa4096",
			csr:      x509.CertificateRequest{Subject: pkix.Name{CommonName: "carol managementAttestation C0FFEE", Organization: []string{"Example"}}},
			wantUser: "carol", wantDev: "C0FFEE",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, st := newTestAuthority(t, tc.caType)
			tmpl := tc.csr
			tmpl.ExtraExtensions = requestedExtensions(t)
			csr := newCSR(t, keyOf(t, tc.key), &tmpl)
			req := &Request{CSR: csr, IntegrationID: "integration-1", TransactionID: "tx-" + tc.key}
			cert, rec := issue(t, a, req)

			if !bytes.Equal(cert.RawSubject, csr.RawSubject) {
				t.Errorf("Issue(%q) subject = %x, want the CSR's bytes %x", tc.name, cert.RawSubject, csr.RawSubject)
			}
			if !bytes.Equal(cert.RawIssuer, a.Intermediate().RawSubject) {
				t.Errorf("Issue(%q) issuer = %q, want %q", tc.name, cert.Issuer, a.Intermediate().Subject)
			}
			if !bytes.Equal(cert.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
				t.Errorf("Issue(%q) public key differs from the CSR's", tc.name)
			}
			if diff := cmp.Diff(csr.DNSNames, cert.DNSNames); diff != "" {
				t.Errorf("Issue(%q) DNS SANs (-csr +cert):\n%s", tc.name, diff)
			}
			if diff := cmp.Diff(csr.EmailAddresses, cert.EmailAddresses); diff != "" {
				t.Errorf("Issue(%q) email SANs (-csr +cert):\n%s", tc.name, diff)
			}
			if len(cert.IPAddresses) != len(csr.IPAddresses) {
				t.Errorf("Issue(%q) IP SANs = %v, want %v", tc.name, cert.IPAddresses, csr.IPAddresses)
			}
			for i := range min(len(cert.IPAddresses), len(csr.IPAddresses)) {
				if !cert.IPAddresses[i].Equal(csr.IPAddresses[i]) {
					t.Errorf("Issue(%q) IP SAN %d = %v, want %v", tc.name, i, cert.IPAddresses[i], csr.IPAddresses[i])
				}
			}
			var gotURIs, wantURIs []string
			for _, u := range cert.URIs {
				gotURIs = append(gotURIs, u.String())
			}
			for _, u := range csr.URIs {
				wantURIs = append(wantURIs, u.String())
			}
			if diff := cmp.Diff(wantURIs, gotURIs); diff != "" {
				t.Errorf("Issue(%q) URI SANs (-csr +cert):\n%s", tc.name, diff)
			}
			if _, ok := extension(cert, oidSAN); ok != (len(wantURIs)+len(csr.DNSNames) > 0) {
				t.Errorf("Issue(%q) SAN extension present = %v", tc.name, ok)
			}

			if cert.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("Issue(%q) KU = %#x, want digitalSignature only", tc.name, cert.KeyUsage)
			}
			if e, ok := extension(cert, oidKU); !ok || !e.Critical {
				t.Errorf("Issue(%q) KU extension present, critical = %v, %v, want true, true", tc.name, ok, e.Critical)
			}
			if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, cert.ExtKeyUsage); diff != "" || len(cert.UnknownExtKeyUsage) > 0 {
				t.Errorf("Issue(%q) EKU (-want +got):\n%s unknown %v", tc.name, diff, cert.UnknownExtKeyUsage)
			}
			if !cert.BasicConstraintsValid || cert.IsCA {
				t.Errorf("Issue(%q) basic constraints valid, CA = %v, %v, want true, false", tc.name, cert.BasicConstraintsValid, cert.IsCA)
			}
			if !bytes.Equal(cert.AuthorityKeyId, a.Intermediate().SubjectKeyId) {
				t.Errorf("Issue(%q) AKI = %x, want %x", tc.name, cert.AuthorityKeyId, a.Intermediate().SubjectKeyId)
			}
			if want := sha1SKI(t, cert); !bytes.Equal(cert.SubjectKeyId, want) {
				t.Errorf("Issue(%q) SKI = %x, want %x", tc.name, cert.SubjectKeyId, want)
			}
			wantCRL := testPublicURL + "/crl/" + a.IntermediateID() + ".crl"
			if a.CRLURL() != wantCRL || a.OCSPURL() != testPublicURL+"/ocsp" {
				t.Errorf("CRLURL(), OCSPURL() = %q, %q, want %q, %q", a.CRLURL(), a.OCSPURL(), wantCRL, testPublicURL+"/ocsp")
			}
			if diff := cmp.Diff([]string{wantCRL}, cert.CRLDistributionPoints); diff != "" {
				t.Errorf("Issue(%q) CRL DP (-want +got):\n%s", tc.name, diff)
			}
			if diff := cmp.Diff([]string{testPublicURL + "/ocsp"}, cert.OCSPServer); diff != "" {
				t.Errorf("Issue(%q) OCSP (-want +got):\n%s", tc.name, diff)
			}
			if len(cert.IssuingCertificateURL) > 0 {
				t.Errorf("Issue(%q) caIssuers = %v, want none", tc.name, cert.IssuingCertificateURL)
			}
			wantNB := testNow.Add(-5 * time.Minute)
			if !cert.NotBefore.Equal(wantNB) || !cert.NotAfter.Equal(wantNB.Add(DefaultValidity)) {
				t.Errorf("Issue(%q) validity = %v to %v, want %v to %v", tc.name, cert.NotBefore, cert.NotAfter, wantNB, wantNB.Add(DefaultValidity))
			}
			wantAlg := x509.SHA256WithRSA
			if tc.caType == KeyTypeECDSA {
				wantAlg = x509.ECDSAWithSHA256
			}
			if cert.SignatureAlgorithm != wantAlg {
				t.Errorf("Issue(%q) signature algorithm = %v, want %v", tc.name, cert.SignatureAlgorithm, wantAlg)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 127 {
				t.Errorf("Issue(%q) serial = %x, want positive with at most 127 bits", tc.name, cert.SerialNumber)
			}

			roots, inters := x509.NewCertPool(), x509.NewCertPool()
			roots.AddCert(a.Root())
			inters.AddCert(a.Intermediate())
			if _, err := cert.Verify(x509.VerifyOptions{
				Roots: roots, Intermediates: inters, CurrentTime: testNow,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}); err != nil {
				t.Errorf("Issue(%q) Verify() = %v", tc.name, err)
			}
			if !a.Trusts(cert) {
				t.Errorf("Trusts(%q) = false, want true", tc.name)
			}

			spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
			want := &store.Certificate{
				Serial:        SerialString(cert.SerialNumber),
				CAID:          a.IntermediateID(),
				IntegrationID: "integration-1",
				TransactionID: "tx-" + tc.key,
				Subject:       cert.Subject.String(),
				User:          tc.wantUser,
				DeviceID:      tc.wantDev,
				NotBefore:     cert.NotBefore,
				NotAfter:      cert.NotAfter,
				IssuedAt:      testNow,
				PublicKeyHash: spki[:],
				DER:           cert.Raw,
				Status:        store.CertIssued,
			}
			if diff := cmp.Diff(want, rec); diff != "" {
				t.Errorf("Issue(%q) record (-want +got):\n%s", tc.name, diff)
			}
			stored, err := st.GetCertificate(t.Context(), want.Serial)
			if err != nil {
				t.Fatalf("GetCertificate(%s) = %v", want.Serial, err)
			}
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("Issue(%q) stored record (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestIssueWithoutPublicURL(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, KeyTypeRSA)
	cfg.PublicURL = ""
	a, err := Init(t.Context(), newMemStore(), testKEK(t), cfg)
	if err != nil {
		t.Fatalf("Init() = %v", err)
	}
	cert, _ := issue(t, a, &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "alice", "D1")})
	if _, ok := extension(cert, oidCDP); ok || len(cert.CRLDistributionPoints) > 0 {
		t.Errorf("Issue(no public URL) CRL DP = %v, want none", cert.CRLDistributionPoints)
	}
	if _, ok := extension(cert, oidAIA); ok || len(cert.OCSPServer) > 0 {
		t.Errorf("Issue(no public URL) OCSP = %v, want no AIA", cert.OCSPServer)
	}
}

func TestIssueValidity(t *testing.T) {
	t.Parallel()
	nb := testNow.Add(-5 * time.Minute)
	tests := []struct {
		name         string
		cfgValidity  time.Duration
		reqValidity  time.Duration
		wantNotAfter func(inter *x509.Certificate) time.Time
		wantErr      bool
	}{
		{name: "default", wantNotAfter: func(*x509.Certificate) time.Time { return nb.Add(365 * 24 * time.Hour) }},
		{name: "config", cfgValidity: 90 * 24 * time.Hour, wantNotAfter: func(*x509.Certificate) time.Time { return nb.Add(90 * 24 * time.Hour) }},
		{name: "request overrides config", cfgValidity: 90 * 24 * time.Hour, reqValidity: 30 * 24 * time.Hour,
			wantNotAfter: func(*x509.Certificate) time.Time { return nb.Add(30 * 24 * time.Hour) }},
		{name: "capped at the intermediate", reqValidity: 50 * 365 * 24 * time.Hour,
			wantNotAfter: func(inter *x509.Certificate) time.Time { return inter.NotAfter }},
		{name: "negative", reqValidity: -time.Hour, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, KeyTypeECDSA)
			cfg.Validity = tc.cfgValidity
			a, err := Init(t.Context(), newMemStore(), testKEK(t), cfg)
			if err != nil {
				t.Fatalf("Init() = %v", err)
			}
			tok, err := a.Prepare(t.Context(), &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "a", "b"), Validity: tc.reqValidity})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Prepare(%q) = %v, want error %v", tc.name, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			cert, _, err := a.Issue(t.Context(), tok)
			if err != nil {
				t.Fatalf("Issue(%q) = %v", tc.name, err)
			}
			if want := tc.wantNotAfter(a.Intermediate()); !cert.NotBefore.Equal(nb) || !cert.NotAfter.Equal(want) {
				t.Errorf("Issue(%q) validity = %v to %v, want %v to %v", tc.name, cert.NotBefore, cert.NotAfter, nb, want)
			}
		})
	}
}

func TestIssueJitter(t *testing.T) {
	t.Parallel()
	nb := testNow.Add(-5 * time.Minute)
	tests := []struct {
		name       string
		validity   time.Duration // per request; 0: the configured 365 days
		jitter     time.Duration
		wantJitter time.Duration // effective bound
	}{
		{name: "one day", jitter: 24 * time.Hour, wantJitter: 24 * time.Hour},
		{name: "capped at half a short request validity", validity: 10 * time.Hour, jitter: 24 * time.Hour, wantJitter: 5 * time.Hour},
		{name: "none", jitter: 0, wantJitter: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, KeyTypeECDSA)
			cfg.Jitter = tc.jitter
			a, err := Init(t.Context(), newMemStore(), testKEK(t), cfg)
			if err != nil {
				t.Fatalf("Init() = %v", err)
			}
			validity := tc.validity
			if validity == 0 {
				validity = DefaultValidity
			}
			latest := nb.Add(validity)
			earliest := latest.Add(-tc.wantJitter) // exclusive, before truncation to seconds
			csr := oktaCSR(t, ecdsaKey(t, p256), "a", "b")
			distinct := map[time.Time]bool{}
			const n = 20
			for range n {
				cert, _ := issue(t, a, &Request{CSR: csr, Validity: tc.validity})
				if cert.NotAfter.After(latest) || tc.wantJitter > 0 && !cert.NotAfter.After(earliest.Add(-time.Second)) {
					t.Errorf("Issue(%q) NotAfter = %v, want in (%v, %v]", tc.name, cert.NotAfter, earliest, latest)
				}
				distinct[cert.NotAfter] = true
			}
			if tc.wantJitter > time.Hour && len(distinct) < n/2 {
				t.Errorf("Issue(%q) x%d gave %d distinct NotAfter values, want jitter to spread them", tc.name, n, len(distinct))
			}
			if tc.wantJitter == 0 && len(distinct) != 1 {
				t.Errorf("Issue(%q) x%d gave %d distinct NotAfter values, want 1", tc.name, n, len(distinct))
			}
		})
	}
}

func TestIssueSerialCollision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		collisions  int32
		wantErr     error
		wantOffered int
	}{
		{name: "one collision", collisions: 1, wantOffered: 2},
		{name: "always colliding", collisions: 1000, wantErr: store.ErrExists, wantOffered: maxSerialAttempts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var audit syncBuffer
			st := &collidingStore{memStore: newMemStore()}
			st.left.Store(tc.collisions)
			cfg := testConfig(t, KeyTypeRSA)
			cfg.Logger = newJSONLogger(&audit)
			a, err := Init(t.Context(), st, testKEK(t), cfg)
			if err != nil {
				t.Fatalf("Init() = %v", err)
			}
			tok, err := a.Prepare(t.Context(), &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "a", "b")})
			if err != nil {
				t.Fatalf("Prepare() = %v", err)
			}
			cert, rec, err := a.Issue(t.Context(), tok)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Issue(%q) = %v, want %v", tc.name, err, tc.wantErr)
			}
			if len(st.offered) != tc.wantOffered {
				t.Errorf("Issue(%q) offered %d serials, want %d", tc.name, len(st.offered), tc.wantOffered)
			}
			seen := map[string]bool{}
			for _, s := range st.offered {
				if seen[s] {
					t.Errorf("Issue(%q) offered serial %s twice", tc.name, s)
				}
				seen[s] = true
			}
			if !strings.Contains(audit.String(), "serial collision") {
				t.Errorf("Issue(%q) audit log lacks the collision:\n%s", tc.name, audit.String())
			}
			n, _ := st.CountCertificates(t.Context())
			if tc.wantErr != nil {
				if cert != nil || rec != nil || n != 0 {
					t.Errorf("Issue(%q) = %v, %v with %d stored, want nothing", tc.name, cert, rec, n)
				}
				return
			}
			if last := st.offered[len(st.offered)-1]; SerialString(cert.SerialNumber) != last || rec.Serial != last || n != 1 {
				t.Errorf("Issue(%q) serial = %s (record %s, %d stored), want the re-drawn %s", tc.name, SerialString(cert.SerialNumber), rec.Serial, n, last)
			}
		})
	}
}

// TestIssueSerialTaken collides for real: the prepared serial is already
// in the (contract-honouring) store.
func TestIssueSerialTaken(t *testing.T) {
	t.Parallel()
	a, st := newTestAuthority(t, KeyTypeECDSA)
	tok, err := a.Prepare(t.Context(), &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "a", "b")})
	if err != nil {
		t.Fatalf("Prepare() = %v", err)
	}
	taken := SerialString(tok.tmpl.SerialNumber)
	if err := st.PutCertificate(t.Context(), &store.Certificate{Serial: taken, Subject: "CN=earlier"}); err != nil {
		t.Fatalf("PutCertificate(%s) = %v", taken, err)
	}
	cert, rec, err := a.Issue(t.Context(), tok)
	if err != nil {
		t.Fatalf("Issue(serial taken) = %v, want nil", err)
	}
	if rec.Serial == taken || SerialString(cert.SerialNumber) != rec.Serial {
		t.Errorf("Issue(serial taken) serial = %s, want a new one (not %s)", rec.Serial, taken)
	}
	if earlier, err := st.GetCertificate(t.Context(), taken); err != nil || earlier.Subject != "CN=earlier" {
		t.Errorf("GetCertificate(%s) = %v, %v, want the earlier record untouched", taken, earlier, err)
	}
}

func TestIssueTokenSingleUse(t *testing.T) {
	t.Parallel()
	a, _ := newTestAuthority(t, KeyTypeECDSA)
	other, _ := newTestAuthority(t, KeyTypeECDSA)
	csr := oktaCSR(t, ecdsaKey(t, p256), "a", "b")
	prepare := func(t *testing.T, a *Authority) *Token {
		t.Helper()
		tok, err := a.Prepare(t.Context(), &Request{CSR: csr})
		if err != nil {
			t.Fatalf("Prepare() = %v", err)
		}
		return tok
	}

	t.Run("second Issue", func(t *testing.T) {
		t.Parallel()
		tok := prepare(t, a)
		if _, _, err := a.Issue(t.Context(), tok); err != nil {
			t.Fatalf("Issue(first) = %v, want nil", err)
		}
		if cert, _, err := a.Issue(t.Context(), tok); !errors.Is(err, ErrTokenUsed) {
			t.Errorf("Issue(second) = %v, %v, want %v", cert, err, ErrTokenUsed)
		}
	})
	t.Run("concurrent redemption", func(t *testing.T) {
		t.Parallel()
		b, st := newTestAuthority(t, KeyTypeECDSA)
		tok := prepare(t, b)
		var mu sync.Mutex
		var ok, used int
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				_, _, err := b.Issue(t.Context(), tok)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrTokenUsed):
					used++
				default:
					t.Errorf("Issue(concurrent) = %v, want nil or %v", err, ErrTokenUsed)
				}
			})
		}
		wg.Wait()
		if ok != 1 || used != 7 {
			t.Errorf("Issue(concurrent) x8 = %d successes, %d ErrTokenUsed, want 1, 7", ok, used)
		}
		if n, err := st.CountCertificates(t.Context()); err != nil || n != 1 {
			t.Errorf("CountCertificates() = %d, %v, want 1", n, err)
		}
	})
	t.Run("another authority's token", func(t *testing.T) {
		t.Parallel()
		tok := prepare(t, other)
		if _, _, err := a.Issue(t.Context(), tok); err == nil {
			t.Errorf("Issue(other authority's token) = nil, want an error")
		}
		// The refusal did not spend the token.
		if _, _, err := other.Issue(t.Context(), tok); err != nil {
			t.Errorf("Issue(own token after refusal elsewhere) = %v, want nil", err)
		}
	})
	t.Run("spent by a failure", func(t *testing.T) {
		t.Parallel()
		st := &collidingStore{memStore: newMemStore()}
		st.left.Store(1000)
		b, err := Init(t.Context(), st, testKEK(t), testConfig(t, KeyTypeECDSA))
		if err != nil {
			t.Fatalf("Init() = %v", err)
		}
		tok := prepare(t, b)
		if _, _, err := b.Issue(t.Context(), tok); err == nil {
			t.Fatalf("Issue(store failing) = nil, want an error")
		}
		if _, _, err := b.Issue(t.Context(), tok); !errors.Is(err, ErrTokenUsed) {
			t.Errorf("Issue(after failure) = %v, want %v", err, ErrTokenUsed)
		}
	})
	t.Run("nil token", func(t *testing.T) {
		t.Parallel()
		if _, _, err := a.Issue(t.Context(), nil); err == nil {
			t.Errorf("Issue(nil) = nil, want an error")
		}
	})
}

func TestIssueConcurrent(t *testing.T) {
	t.Parallel()
	a, st := newTestAuthority(t, KeyTypeECDSA)
	csr := oktaCSR(t, ecdsaKey(t, p256), "a", "b")
	const n = 100
	var mu sync.Mutex
	serials := map[string]bool{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			tok, err := a.Prepare(t.Context(), &Request{CSR: csr})
			if err != nil {
				t.Errorf("Prepare() = %v", err)
				return
			}
			cert, _, err := a.Issue(t.Context(), tok)
			if err != nil {
				t.Errorf("Issue() = %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			serials[SerialString(cert.SerialNumber)] = true
		})
	}
	wg.Wait()
	if len(serials) != n {
		t.Errorf("Issue() x%d concurrently = %d unique serials, want %d", n, len(serials), n)
	}
	if got, err := st.CountCertificates(t.Context()); err != nil || got != n {
		t.Errorf("CountCertificates() = %d, %v, want %d", got, err, n)
	}
}

func TestIssueAudit(t *testing.T) {
	t.Parallel()
	var audit syncBuffer
	cfg := testConfig(t, KeyTypeRSA)
	cfg.Logger = newJSONLogger(&audit)
	a, err := Init(t.Context(), newMemStore(), testKEK(t), cfg)
	if err != nil {
		t.Fatalf("Init() = %v", err)
	}
	_, rec := issue(t, a, &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "a", "b"), IntegrationID: "int-7", TransactionID: "tx-9"})

	var msgs []string
	for line := range strings.Lines(audit.String()) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		msg, _ := e["msg"].(string)
		if msg != "issuing" && msg != "issued" {
			continue
		}
		msgs = append(msgs, msg)
		want := map[string]any{attrSerial: rec.Serial, attrTransactionID: "tx-9", attrIntegrationID: "int-7", attrCAID: a.IntermediateID()}
		for k, v := range want {
			if e[k] != v {
				t.Errorf("audit %q: %s = %v, want %v", msg, k, e[k], v)
			}
		}
	}
	if diff := cmp.Diff([]string{"issuing", "issued"}, msgs); diff != "" {
		t.Errorf("audit lines (-want +got):\n%s", diff)
	}
}

func TestPrepareErrors(t *testing.T) {
	t.Parallel()
	a, st := newTestAuthority(t, KeyTypeRSA)
	expiredCfg := testConfig(t, "")
	expiredCfg.Now = func() time.Time { return testNow.AddDate(11, 0, 0) }
	expired, err := Open(t.Context(), st, testKEK(t), expiredCfg)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		a    *Authority
		ctx  context.Context
		req  *Request
		want error // nil: any error
	}{
		{name: "weak key", a: a, req: &Request{CSR: newCSR(t, cachedRSAKey(t, 1024, 0), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}})}, want: ErrPolicy},
		{name: "no CSR", a: a, req: &Request{}, want: ErrPolicy},
		{name: "nil request", a: a, req: nil},
		{name: "canceled", a: a, ctx: canceled, req: &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "a", "b")}, want: context.Canceled},
		{name: "intermediate expired", a: expired, req: &Request{CSR: oktaCSR(t, ecdsaKey(t, p256), "a", "b")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := tc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			tok, err := tc.a.Prepare(ctx, tc.req)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Prepare(%q) = %v, %v, want an error wrapping %v", tc.name, tok, err, tc.want)
			}
			if errors.Is(err, ErrPolicy) != (tc.want == ErrPolicy) {
				t.Errorf("Prepare(%q) = %v, want ErrPolicy only for policy refusals", tc.name, err)
			}
		})
	}
}

func BenchmarkIssueRSA(b *testing.B)   { benchmarkIssue(b, KeyTypeRSA) }
func BenchmarkIssueECDSA(b *testing.B) { benchmarkIssue(b, KeyTypeECDSA) }

// benchmarkIssue measures Prepare (CSR check, template, lint) plus Issue
// (one signature with the real key, one store write to the in-memory fake)
// for an RSA-2048 CSR, the key all three MDM recipes use.
func benchmarkIssue(b *testing.B, keyType string) {
	a, _ := newTestAuthority(b, keyType)
	csr := oktaCSR(b, cachedRSAKey(b, 2048, 0), "alice", "UDID123")
	b.ReportAllocs()
	for b.Loop() {
		tok, err := a.Prepare(b.Context(), &Request{CSR: csr, IntegrationID: "i", TransactionID: "t"})
		if err != nil {
			b.Fatalf("Prepare() = %v", err)
		}
		if _, _, err := a.Issue(b.Context(), tok); err != nil {
			b.Fatalf("Issue() = %v", err)
		}
	}
}
