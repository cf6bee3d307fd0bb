package attest_test

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/testpki"
)

// TestCRLs: the CRL is fetched once and cached until its nextUpdate (on
// the injected clock), then fetched again; every way a CRL can be unusable
// fails closed with ErrCRLUnavailable; a failure is remembered for
// RetryAfter.
func TestCRLs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	byo := f.uploadBYO(t)
	key := testpki.NewECKey(t, elliptic.P256())
	good := byo.issue(t, key.Public(), "good")
	bad := byo.issue(t, key.Public(), "bad")
	c := newClock()
	crls, err := attest.NewCRLs(attest.CRLConfig{Now: c.Now, RetryAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	check := func(cert *x509.Certificate) (attest.CRLStatus, error) {
		return crls.Check(t.Context(), cert, byo.h.Intermediate)
	}
	byo.setCRL(t, c.Now(), time.Hour)
	if st, err := check(good); err != nil || st != attest.CRLGood {
		t.Fatalf("Check(good) = %v, %v, want good", st, err)
	}
	// Listed now, but the cached CRL is still valid: not seen yet.
	byo.setCRL(t, c.Now(), 2*time.Hour, x509.RevocationListEntry{SerialNumber: bad.SerialNumber, RevocationTime: c.Now()})
	if st, err := check(bad); err != nil || st != attest.CRLGood || byo.fetches.Load() != 1 {
		t.Errorf("Check(bad) before nextUpdate = %v, %v after %d fetches, want the cached answer after 1 fetch", st, err, byo.fetches.Load())
	}
	c.Add(time.Hour)
	if st, err := check(bad); err != nil || st != attest.CRLRevoked || byo.fetches.Load() != 2 {
		t.Errorf("Check(bad) at nextUpdate = %v, %v after %d fetches, want revoked after 2 fetches", st, err, byo.fetches.Load())
	}

	// Unreachable: fail closed, and the failure is remembered.
	byo.mu.Lock()
	byo.status = http.StatusServiceUnavailable
	byo.mu.Unlock()
	c.Add(time.Hour)
	if _, err := check(good); !errors.Is(err, attest.ErrCRLUnavailable) {
		t.Errorf("Check() with the CRL server down = %v, want %v", err, attest.ErrCRLUnavailable)
	}
	n := byo.fetches.Load()
	if _, err := check(good); !errors.Is(err, attest.ErrCRLUnavailable) || byo.fetches.Load() != n {
		t.Errorf("Check() within RetryAfter = %v after %d more fetches, want %v without a fetch", err, byo.fetches.Load()-n, attest.ErrCRLUnavailable)
	}
	byo.mu.Lock()
	byo.status = http.StatusOK
	byo.mu.Unlock()
	c.Add(time.Minute)
	byo.setCRL(t, c.Now(), time.Hour)
	if st, err := check(good); err != nil || st != attest.CRLGood {
		t.Errorf("Check() after the server is back = %v, %v, want good", st, err)
	}
}

// TestCRLUnusable: every kind of unusable CRL fails closed.
func TestCRLUnusable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	byo := f.uploadBYO(t)
	other := testpki.CA(t)
	otherCRL, err := x509.CreateRevocationList(nil, &x509.RevocationList{Number: testpkiSerial(), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, other.Root, other.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	key := testpki.NewECKey(t, elliptic.P256())
	tests := []struct {
		name    string
		handler http.HandlerFunc
		detail  string
	}{
		{"not a CRL", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }, "parse CRL"},
		{"signed by another CA", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(otherCRL) }, "issuer"},
		{"too large", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(make([]byte, 2048)) }, "larger than"},
		{"404", http.NotFound, "HTTP 404"},
		{"stale", func(w http.ResponseWriter, r *http.Request) {
			der, err := x509.CreateRevocationList(nil, &x509.RevocationList{Number: testpkiSerial(), ThisUpdate: time.Now().Add(-2 * time.Hour), NextUpdate: time.Now().Add(-time.Hour)}, byo.h.Intermediate, byo.h.IntermediateKey)
			if err != nil {
				t.Error(err)
			}
			_, _ = w.Write(der)
		}, "past its nextUpdate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			cert := byo.issue(t, key.Public(), tc.name, testpki.WithTemplate(func(c *x509.Certificate) {
				c.CRLDistributionPoints = []string{"ldap://ldap.example.com/cn=crl", srv.URL + "/x.crl"}
			}))
			crls, err := attest.NewCRLs(attest.CRLConfig{MaxBytes: 1024})
			if err != nil {
				t.Fatal(err)
			}
			_, err = crls.Check(t.Context(), cert, byo.h.Intermediate)
			if !errors.Is(err, attest.ErrCRLUnavailable) || !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("Check(%s) = %v, want %v naming %q", tc.name, err, attest.ErrCRLUnavailable, tc.detail)
			}
		})
	}

	// A PEM CRL is accepted too.
	der, err := x509.CreateRevocationList(nil, &x509.RevocationList{Number: testpkiSerial(), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, byo.h.Intermediate, byo.h.IntermediateKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = pem.Encode(w, &pem.Block{Type: "X509 CRL", Bytes: der})
	}))
	t.Cleanup(srv.Close)
	cert := byo.issue(t, key.Public(), "pem", testpki.WithTemplate(func(c *x509.Certificate) { c.CRLDistributionPoints = []string{srv.URL} }))
	crls, err := attest.NewCRLs(attest.CRLConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := crls.Check(t.Context(), cert, byo.h.Intermediate); err != nil || st != attest.CRLGood {
		t.Errorf("Check(PEM CRL) = %v, %v, want good", st, err)
	}
}
