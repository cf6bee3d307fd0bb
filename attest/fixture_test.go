package attest_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/client"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is the verifier over a real bbolt store and a real CA, on an
// injected clock.
type fixture struct {
	db        *bolt.DB
	kek       *ca.KEK
	ca        *ca.Authority
	clock     *clock
	nonces    *attest.Nonces
	anchors   *attest.Anchors
	crls      *attest.CRLs
	verifier  *attest.Verifier
	svc       *attest.Service
	lifecycle *attest.Lifecycle
}

func newKEK(t testing.TB) *ca.KEK {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	kek, err := ca.ParseKEK([]byte(base64.StdEncoding.EncodeToString(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

func newFixture(t testing.TB, keyType string) *fixture {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatalf("bolt.Open() = %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	f := &fixture{db: db, kek: newKEK(t), clock: newClock()}
	f.ca, err = ca.Init(t.Context(), db, f.kek, ca.Config{Org: "Attest Test", KeyType: keyType, PublicURL: "https://scepca.example.com", Now: f.clock.Now})
	if err != nil {
		t.Fatalf("ca.Init() = %v", err)
	}
	if f.nonces, err = attest.NewNonces(db, 0, f.clock.Now); err != nil {
		t.Fatal(err)
	}
	if f.anchors, err = attest.NewAnchors(db, 0, f.clock.Now); err != nil {
		t.Fatal(err)
	}
	if f.crls, err = attest.NewCRLs(attest.CRLConfig{Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	f.verifier, err = attest.New(attest.Config{
		Nonces: f.nonces, Anchors: f.anchors, Certificates: db, CRLs: f.crls,
		Devices: db, Integrations: db, Hints: f.kek, Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.svc, err = attest.NewService(f.nonces, f.anchors, f.verifier); err != nil {
		t.Fatal(err)
	}
	if f.lifecycle, err = attest.NewLifecycle(db, f.clock.Now, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue has our CA issue a certificate for key with common name cn.
func (f *fixture) issue(t testing.TB, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(testpki.CSR(t, key, pkix.Name{CommonName: cn}, ""))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.ca.Prepare(t.Context(), &ca.Request{CSR: csr, IntegrationID: "int-desktop"})
	if err != nil {
		t.Fatalf("Prepare() = %v", err)
	}
	cert, _, err := f.ca.Issue(t.Context(), tok)
	if err != nil {
		t.Fatalf("Issue() = %v", err)
	}
	return cert
}

// nonce mints a nonce.
func (f *fixture) nonce(t testing.TB) string {
	t.Helper()
	n, err := f.svc.NewNonce(t.Context())
	if err != nil {
		t.Fatalf("NewNonce() = %v", err)
	}
	return n.Nonce
}

// decode runs a VerifyRequest through its JSON form and the decoder, as
// the HTTP API does.
func decode(t testing.TB, req *attest.VerifyRequest) *attest.Proof {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	p, err := attest.DecodeVerifyRequest(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("DecodeVerifyRequest(%s) = %v", b, err)
	}
	return p
}

// desktopProof signs a fresh nonce (or nonce, when given) with key.
func (f *fixture) desktopProof(t testing.TB, key crypto.Signer, cert *x509.Certificate, deviceID, alg string) *attest.VerifyRequest {
	t.Helper()
	req, err := client.SignDesktop(key, cert, f.nonce(t), deviceID, attest.PlatformMacOS, alg)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// verify decodes and verifies req.
func (f *fixture) verify(t testing.TB, req *attest.VerifyRequest) *attest.DeviceContext {
	t.Helper()
	dc, err := f.svc.Verify(t.Context(), decode(t, req))
	if err != nil {
		t.Fatalf("Verify() = %v, want a device context", err)
	}
	return dc
}

// wantReason checks a device context's verdict.
func wantReason(t testing.TB, desc string, dc *attest.DeviceContext, reason string) {
	t.Helper()
	if dc.Reason != reason || dc.Managed != (reason == attest.ReasonManaged) {
		t.Errorf("%s = managed %v, reason %s (%s), want reason %s", desc, dc.Managed, dc.Reason, dc.Detail, reason)
	}
}

// byoCA is an uploaded ("bring your own") intermediate with a CRL server.
type byoCA struct {
	h       *testpki.Hierarchy
	id      string
	srv     *httptest.Server
	fetches atomic.Int32
	mu      sync.Mutex
	crl     []byte // DER served; nil → 404
	status  int
}

// uploadBYO creates a BYO hierarchy, stores its intermediate as an
// UPLOADED record and serves its (empty) CRL.
func (f *fixture) uploadBYO(t testing.TB) *byoCA {
	t.Helper()
	b := &byoCA{h: testpki.CA(t), status: http.StatusOK}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.fetches.Add(1)
		b.mu.Lock()
		crl, status := b.crl, b.status
		b.mu.Unlock()
		if status != http.StatusOK || crl == nil {
			http.Error(w, "no", max(status, http.StatusNotFound))
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(crl)
	}))
	t.Cleanup(b.srv.Close)
	b.id = "byo-" + b.h.Intermediate.SerialNumber.Text(16)
	rec := &store.CA{ID: b.id, Role: store.RoleUploaded, Subject: b.h.Intermediate.Subject.String(), CertDER: b.h.Intermediate.Raw, Active: true, CreatedAt: f.clock.Now()}
	if err := f.db.CreateCA(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	f.svc.TrustChanged()
	b.setCRL(t, f.clock.Now(), 24*time.Hour)
	return b
}

// setCRL signs a CRL listing entries (serial → reason), valid from now
// for validity.
func (b *byoCA) setCRL(t testing.TB, now time.Time, validity time.Duration, entries ...x509.RevocationListEntry) {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now.Add(-time.Minute),
		NextUpdate:                now.Add(validity),
		RevokedCertificateEntries: entries,
	}, b.h.Intermediate, b.h.IntermediateKey)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.crl = der
	b.mu.Unlock()
}

// issue signs a leaf with the BYO intermediate, with a CRL distribution
// point on the test server.
func (b *byoCA) issue(t testing.TB, pub crypto.PublicKey, cn string, opts ...testpki.CertOption) *x509.Certificate {
	t.Helper()
	opts = append([]testpki.CertOption{testpki.WithTemplate(func(c *x509.Certificate) {
		c.CRLDistributionPoints = []string{b.srv.URL + "/byo.crl"}
	})}, opts...)
	return b.h.Issue(t, pub, cn, opts...)
}

var crlNumber atomic.Int64

// testpkiSerial returns a fresh CRL number.
func testpkiSerial() *big.Int { return big.NewInt(crlNumber.Add(1)) }
