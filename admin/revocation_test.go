package admin_test

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// notifyingDB tells the revocation publisher of every status change, as
// cmd/scepca wires the store.
type notifyingDB struct {
	*bolt.DB
	changed func()
}

func (d notifyingDB) UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error {
	err := d.DB.UpdateCertificateStatus(ctx, serial, status, at, reason)
	d.changed()
	return err
}

// revFixture is the admin API and the public revocation routes over one
// real bbolt store with a CA, served the way cmd wires them.
type revFixture struct {
	*fixture
	a   *ca.Authority
	rev *ca.Revocation
}

func newRevFixture(t *testing.T) *revFixture {
	t.Helper()
	f := &revFixture{fixture: &fixture{db: openDB(t), token: randomString(t), audit: &syncBuffer{}, reqlog: &syncBuffer{}}}
	f.a = f.withCA(t)
	var err error
	f.rev, err = ca.NewRevocation(ca.RevocationConfig{Issuers: f.a, Store: f.db})
	if err != nil {
		t.Fatalf("ca.NewRevocation() = %v", err)
	}
	api, err := admin.New(admin.Config{
		Store:       notifyingDB{DB: f.db, changed: f.rev.Changed},
		PublicURL:   publicURL,
		TokenHashes: [][]byte{admin.TokenHash(admin.Token(f.token))},
		Audit:       slog.New(slog.NewJSONHandler(f.audit, nil)),
	})
	if err != nil {
		t.Fatalf("admin.New() = %v", err)
	}
	routes, err := admin.NewRevocation(f.rev)
	if err != nil {
		t.Fatalf("admin.NewRevocation() = %v", err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	routes.Register(mux)
	log := slog.New(slog.NewJSONHandler(f.reqlog, nil))
	f.srv = httptest.NewServer(reqlog.Middleware(log, nil)(reqlog.LimitBody(maxBody)(mux)))
	t.Cleanup(f.srv.Close)
	return f
}

// issue issues a certificate for "<user> managementAttestation <device>"
// through the CA.
func (f *revFixture) issue(t *testing.T, integrationID, user, device string) (*x509.Certificate, *store.Certificate) {
	t.Helper()
	return f.issueFor(t, integrationID, user, device, 0)
}

// issueFor is issue with a validity (0: the CA's default).
func (f *revFixture) issueFor(t *testing.T, integrationID, user, device string, validity time.Duration) (*x509.Certificate, *store.Certificate) {
	t.Helper()
	der := testpki.CSR(t, testpki.NewECKey(t, elliptic.P256()), pkix.Name{CommonName: user + " managementAttestation " + device}, "")
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.a.Prepare(t.Context(), &ca.Request{CSR: csr, IntegrationID: integrationID, Validity: validity})
	if err != nil {
		t.Fatalf("Prepare() = %v", err)
	}
	cert, rec, err := f.a.Issue(t.Context(), tok)
	if err != nil {
		t.Fatalf("Issue() = %v", err)
	}
	return cert, rec
}

// get fetches path without a token, with optional header pairs.
func (f *revFixture) get(t *testing.T, method, path string, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s = %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, raw
}

// crl fetches and verifies the CA's CRL and returns serial → reason.
func (f *revFixture) crl(t *testing.T) map[string]int {
	t.Helper()
	resp, body := f.get(t, http.MethodGet, "/crl/"+f.a.IntermediateID()+".crl", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET CRL = %d %s", resp.StatusCode, body)
	}
	rl, err := x509.ParseRevocationList(body)
	if err != nil {
		t.Fatalf("ParseRevocationList() = %v", err)
	}
	if err := rl.CheckSignatureFrom(f.a.Intermediate()); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	out := map[string]int{}
	for _, e := range rl.RevokedCertificateEntries {
		out[ca.SerialString(e.SerialNumber)] = e.ReasonCode
	}
	return out
}

// ocspStatus asks the OCSP responder by POST about cert.
func (f *revFixture) ocspStatus(t *testing.T, cert *x509.Certificate) *ocsp.Response {
	t.Helper()
	req, err := ocsp.CreateRequest(cert, f.a.Intermediate(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := f.get(t, http.MethodPost, "/ocsp", string(req), "Content-Type", "application/ocsp-request")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("POST /ocsp = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r, err := ocsp.ParseResponseForCert(body, cert, f.a.Intermediate())
	if err != nil {
		t.Fatalf("ParseResponseForCert() = %v", err)
	}
	return r
}

func TestRevocationCRLRoute(t *testing.T) {
	t.Parallel()
	f := newRevFixture(t)
	_, rec := f.issue(t, "i1", "alice", "D1")
	if err := f.db.UpdateCertificateStatus(t.Context(), rec.Serial, store.CertRevoked, time.Now(), 1); err != nil {
		t.Fatal(err)
	}
	f.rev.Changed()
	path := "/crl/" + f.a.IntermediateID() + ".crl"
	resp, body := f.get(t, http.MethodGet, path, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, body)
	}
	for h, want := range map[string]string{"Content-Type": "application/pkix-crl", "Cache-Control": "public, max-age=60"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("GET %s %s = %q, want %q", path, h, got, want)
		}
	}
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lastMod == "" {
		t.Errorf("GET %s ETag %q Last-Modified %q, want both", path, etag, lastMod)
	}
	if got := f.crl(t); got[rec.Serial] != 1 || len(got) != 1 {
		t.Errorf("CRL entries %v, want %s with reason 1", got, rec.Serial)
	}
	if resp, _ := f.get(t, http.MethodGet, path, "", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET %s If-None-Match = %d, want 304", path, resp.StatusCode)
	}
	if resp, body := f.get(t, http.MethodHead, path, ""); resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD %s = %d with %d bytes, want 200 and no body", path, resp.StatusCode, len(body))
	}

	for _, tc := range []struct {
		name, method, path string
		status             int
		detail             string
	}{
		{"unknown CA", http.MethodGet, "/crl/nope.crl", http.StatusNotFound, `no issuing certificate authority "nope"`},
		{"root", http.MethodGet, "/crl/" + f.a.RootID() + ".crl", http.StatusNotFound, "no issuing certificate authority"},
		{"no suffix", http.MethodGet, "/crl/" + f.a.IntermediateID(), http.StatusNotFound, "/crl/{caID}.crl"},
		{"empty ID", http.MethodGet, "/crl/.crl", http.StatusNotFound, "/crl/{caID}.crl"},
		{"nested", http.MethodGet, "/crl/a/b.crl", http.StatusNotFound, "/crl/{caID}.crl"},
		{"directory", http.MethodGet, "/crl/", http.StatusNotFound, "/crl/{caID}.crl"},
		{"POST", http.MethodPost, path, http.StatusMethodNotAllowed, "GET"},
		{"DELETE", http.MethodDelete, path, http.StatusMethodNotAllowed, "GET"},
	} {
		resp, body := f.get(t, tc.method, tc.path, "")
		wantProblem(t, tc.name+": "+tc.method+" "+tc.path, resp, body, tc.status, tc.detail)
		if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s Allow = %q, want %q", tc.name, resp.Header.Get("Allow"), "GET, HEAD")
		}
	}
}

func TestRevocationOCSPRoute(t *testing.T) {
	t.Parallel()
	f := newRevFixture(t)
	cert, rec := f.issue(t, "i1", "alice", "D1")
	if err := f.db.UpdateCertificateStatus(t.Context(), rec.Serial, store.CertOnHold, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	if r := f.ocspStatus(t, cert); r.Status != ocsp.Revoked || r.RevocationReason != ocsp.CertificateHold {
		t.Errorf("POST /ocsp = status %d reason %d, want revoked, certificateHold", r.Status, r.RevocationReason)
	}

	req, err := ocsp.CreateRequest(cert, f.a.Intermediate(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []struct {
		name string
		path string
	}{
		{"std, URL-encoded", url.PathEscape(base64.StdEncoding.EncodeToString(req))},
		{"std, query-escaped", url.QueryEscape(base64.StdEncoding.EncodeToString(req))},
		{"URL-safe, unpadded", base64.RawURLEncoding.EncodeToString(req)},
	} {
		resp, body := f.get(t, http.MethodGet, "/ocsp/"+enc.path, "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, max-age=60" {
			t.Errorf("GET /ocsp (%s) = %d, Cache-Control %q", enc.name, resp.StatusCode, resp.Header.Get("Cache-Control"))
			continue
		}
		r, err := ocsp.ParseResponseForCert(body, cert, f.a.Intermediate())
		if err != nil || r.Status != ocsp.Revoked {
			t.Errorf("GET /ocsp (%s) = %v, %v, want revoked", enc.name, r, err)
		}
	}

	unauthorized, err := (&ocsp.Request{
		HashAlgorithm: crypto.SHA1, IssuerNameHash: make([]byte, 20), IssuerKeyHash: make([]byte, 20), SerialNumber: cert.SerialNumber,
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, body string
		want                     []byte
	}{
		{"malformed POST", http.MethodPost, "/ocsp", "not DER", ocsp.MalformedRequestErrorResponse},
		{"empty POST", http.MethodPost, "/ocsp", "", ocsp.MalformedRequestErrorResponse},
		{"oversized POST", http.MethodPost, "/ocsp", strings.Repeat("A", 17<<10), ocsp.MalformedRequestErrorResponse},
		{"bad base64", http.MethodGet, "/ocsp/%21%21", "", ocsp.MalformedRequestErrorResponse},
		{"empty GET", http.MethodGet, "/ocsp/", "", ocsp.MalformedRequestErrorResponse},
		{"another issuer", http.MethodPost, "/ocsp", string(unauthorized), ocsp.UnauthorizedErrorResponse},
	} {
		resp, body := f.get(t, tc.method, tc.path, tc.body)
		if resp.StatusCode != http.StatusOK || string(body) != string(tc.want) || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %s %s = %d %x (Cache-Control %q), want 200 %x no-store", tc.name, tc.method, tc.path, resp.StatusCode, body, resp.Header.Get("Cache-Control"), tc.want)
		}
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/ocsp"},
		{http.MethodPut, "/ocsp"},
		{http.MethodDelete, "/ocsp/abc"},
	} {
		resp, body := f.get(t, tc.method, tc.path, "")
		wantProblem(t, tc.method+" "+tc.path, resp, body, http.StatusMethodNotAllowed, "OCSP")
		if resp.Header.Get("Allow") != "GET, POST" {
			t.Errorf("%s %s Allow = %q, want %q", tc.method, tc.path, resp.Header.Get("Allow"), "GET, POST")
		}
	}
}
