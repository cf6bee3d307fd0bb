package scep_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/scep"
	"github.com/scepca/scepca/store"
)

// TestIdempotency covers retries with a known transactionID (PROTOCOLS.md
// §1.7): the same key and challenge get the same certificate, another key
// is refused, a failed attempt does not poison the transaction.
func TestIdempotency(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t.Run("same key same challenge", func(t *testing.T) {
		t.Parallel()
		e := f.addEndpoint(t)
		first, cert := e.enroll(t)
		// A new message (new nonce, new self-signed signer) for the same
		// transaction and CSR key, by GET this time.
		m := e.message(t, withTxID(first.TransactionID))
		r := e.do(t, m, "GET")
		again := wantSuccess(t, m, r)
		if !bytes.Equal(again.Raw, cert.Raw) {
			t.Errorf("PKIOperation(%s) replay = serial %s, want the same certificate %s", describe(m), serialOf(again), serialOf(cert))
		}
		// Identical bytes resent, as scepclient does.
		raw := marshal(t, first)
		for range 2 {
			wantSuccess(t, first, e.send(t, first, raw, ""))
		}
		countIntegrationCerts(t, e, 1)
	})
	t.Run("same transaction other key", func(t *testing.T) {
		t.Parallel()
		e := f.addEndpoint(t)
		first, _ := e.enroll(t)
		m := e.message(t, withTxID(first.TransactionID), withKey(testKey(t, 1)))
		wantFailure(t, m, e.do(t, m, ""), scep.BadRequest)
		countIntegrationCerts(t, e, 1)
	})
	t.Run("same transaction other challenge", func(t *testing.T) {
		t.Parallel()
		e := f.addEndpoint(t)
		first, _ := e.enroll(t)
		m := e.message(t, withTxID(first.TransactionID), withChallenge("another challenge"))
		wantFailure(t, m, e.do(t, m, ""), scep.BadRequest)
		countIntegrationCerts(t, e, 1)
	})
	t.Run("corrected retry after failure", func(t *testing.T) {
		t.Parallel()
		e := f.addEndpoint(t)
		bad := e.message(t, withChallenge("wrong"))
		wantFailure(t, bad, e.do(t, bad, ""), scep.BadRequest)
		m := e.message(t, withTxID(bad.TransactionID))
		wantSuccess(t, m, e.do(t, m, ""))
		countIntegrationCerts(t, e, 1)
	})
	t.Run("same transaction other integration", func(t *testing.T) {
		t.Parallel()
		a, b := f.addEndpoint(t), f.addEndpoint(t)
		first, certA := a.enroll(t)
		m, certB := b.enroll(t, withTxID(first.TransactionID))
		if certA.SerialNumber.Cmp(certB.SerialNumber) == 0 {
			t.Errorf("PKIOperation(%s) in a second integration = the first integration's certificate", describe(m))
		}
	})
}

func countIntegrationCerts(t *testing.T, e *endpoint, want int) {
	t.Helper()
	certs, err := e.f.store.ListCertificates(t.Context(), storeFilter(e))
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != want {
		t.Errorf("integration %s holds %d certificates, want %d", e.integ.ID, len(certs), want)
	}
}

// TestConcurrentIdenticalRequests sends one PKCSReq 50 times at once:
// exactly one certificate is made, and every reply is SUCCESS with it or
// PENDING.
func TestConcurrentIdenticalRequests(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	m := e.message(t)
	raw := marshal(t, m)
	const n = 50
	replies := make([]*scepclient.Reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := e.client("").PKIOperation(t.Context(), raw)
			if err != nil {
				t.Errorf("PKIOperation(%s) #%d = %v", describe(m), i, err)
				return
			}
			r, err := scepclient.ParseReply(out, m.Signer, m.Key)
			if err != nil {
				t.Errorf("ParseReply(#%d) = %v", i, err)
				return
			}
			replies[i] = r
		})
	}
	wg.Wait()
	var serial string
	var success, pending int
	for i, r := range replies {
		if r == nil {
			continue
		}
		if r.TransactionID != m.TransactionID || !bytes.Equal(r.RecipientNonce, m.SenderNonce) {
			t.Errorf("PKIOperation(%s) #%d does not answer the request", describe(m), i)
		}
		switch r.Status {
		case scepclient.StatusSuccess:
			success++
			if len(r.Certificates) != 1 {
				t.Errorf("PKIOperation(%s) #%d = %d certificates, want 1", describe(m), i, len(r.Certificates))
				continue
			}
			s := serialOf(r.Certificates[0])
			if serial == "" {
				serial = s
			}
			if s != serial {
				t.Errorf("PKIOperation(%s) #%d = serial %s, want %s like the others", describe(m), i, s, serial)
			}
		case scepclient.StatusPending:
			pending++
		default:
			t.Errorf("PKIOperation(%s) #%d = %s/%s, want SUCCESS or PENDING", describe(m), i, statusName(r.Status), failName(r.FailInfo))
		}
	}
	if success == 0 {
		t.Errorf("PKIOperation(%s) × %d: no SUCCESS (%d PENDING)", describe(m), n, pending)
	}
	got, err := e.f.store.CountCertificates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got != 1 {
		t.Errorf("CountCertificates() after %d identical requests = %d, want 1", n, got)
	}
	// The client polls the way scepclient does, resending the identical
	// request: now it is SUCCESS with the same certificate.
	r := e.send(t, m, raw, "")
	if c := wantSuccess(t, m, r); serial != "" && serialOf(c) != serial {
		t.Errorf("PKIOperation(%s) resend = serial %s, want %s", describe(m), serialOf(c), serial)
	}
	t.Logf("%d SUCCESS, %d PENDING", success, pending)
}

// TestPollGetCertGetCRL covers CertPoll, GetCert and GetCRL after an
// enrollment.
func TestPollGetCertGetCRL(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	first, cert := e.enroll(t)
	inter := e.f.ca.Intermediate()

	t.Run("CertPoll", func(t *testing.T) {
		t.Parallel()
		content, err := scepclient.IssuerAndSubject(inter, cert.RawSubject)
		if err != nil {
			t.Fatal(err)
		}
		m := e.message(t, withType(scepclient.TypeCertPoll), withTxID(first.TransactionID), withSigner(first.Signer, first.Key), withContent(content))
		got := wantSuccess(t, m, e.do(t, m, ""))
		if !bytes.Equal(got.Raw, cert.Raw) {
			t.Errorf("PKIOperation(%s) = serial %s, want %s", describe(m), serialOf(got), serialOf(cert))
		}
	})
	t.Run("GetCert", func(t *testing.T) {
		t.Parallel()
		// The holder asks, signing with the issued certificate.
		m := e.message(t, withType(scepclient.TypeGetCert), withSigner(cert, first.Key), withContent(issuerAndSerial(t, inter, cert.SerialNumber)))
		got := wantSuccess(t, m, e.do(t, m, "GET"))
		if !bytes.Equal(got.Raw, cert.Raw) {
			t.Errorf("PKIOperation(%s) = serial %s, want %s", describe(m), serialOf(got), serialOf(cert))
		}
	})
	t.Run("GetCRL", func(t *testing.T) {
		t.Parallel()
		m := e.message(t, withType(scepclient.TypeGetCRL), withSigner(cert, first.Key), withContent(issuerAndSerial(t, inter, cert.SerialNumber)))
		r := e.do(t, m, "")
		if r.Status != scepclient.StatusSuccess {
			t.Fatalf("PKIOperation(%s) = %s/%s, want SUCCESS", describe(m), statusName(r.Status), failName(r.FailInfo))
		}
		if len(r.CRLs) != 1 || len(r.Certificates) != 0 {
			t.Fatalf("PKIOperation(%s) = %d CRLs, %d certificates, want 1 CRL", describe(m), len(r.CRLs), len(r.Certificates))
		}
		crl, err := x509.ParseRevocationList(r.CRLs[0])
		if err != nil {
			t.Fatalf("ParseRevocationList() = %v", err)
		}
		if err := crl.CheckSignatureFrom(inter); err != nil {
			t.Errorf("GetCRL CRL not signed by the intermediate: %v", err)
		}
		if !bytes.Equal(crl.RawIssuer, inter.RawSubject) {
			t.Errorf("GetCRL CRL issuer = %v, want %v", crl.Issuer, inter.Subject)
		}
	})
}

// TestGetCRLListsRevoked revokes a certificate and finds it on the CRL
// GetCRL returns.
func TestGetCRLListsRevoked(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, withECDSA())
	first, cert := e.enroll(t)
	revoke(t, e, cert)
	m := e.message(t, withType(scepclient.TypeGetCRL), withSigner(first.Signer, first.Key), withContent(issuerAndSerial(t, e.f.ca.Intermediate(), cert.SerialNumber)))
	r := e.do(t, m, "")
	if r.Status != scepclient.StatusSuccess || len(r.CRLs) != 1 {
		t.Fatalf("PKIOperation(%s) = %s/%s with %d CRLs, want SUCCESS with 1", describe(m), statusName(r.Status), failName(r.FailInfo), len(r.CRLs))
	}
	crl, err := x509.ParseRevocationList(r.CRLs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(e.f.ca.Intermediate()); err != nil {
		t.Errorf("GetCRL CRL not signed by the ECDSA intermediate: %v", err)
	}
	found := false
	for _, entry := range crl.RevokedCertificateEntries {
		found = found || entry.SerialNumber.Cmp(cert.SerialNumber) == 0
	}
	if !found {
		t.Errorf("GetCRL CRL does not list revoked serial %s", serialOf(cert))
	}
}

// TestPendingWhileInFlight claims a transaction as another replica would
// (PROTOCOLS.md §1.7): while its lease runs, the resent PKCSReq and a
// CertPoll get PENDING; once the lease has run out, a retry takes the
// transaction over and succeeds.
func TestPendingWhileInFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name       string
		lease      time.Duration // relative to now
		wantStatus string
	}{
		{"lease running", time.Hour, scepclient.StatusPending},
		{"lease run out", -time.Minute, scepclient.StatusSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := f.addEndpoint(t)
			m := e.message(t)
			csr, err := x509.ParseCertificateRequest(m.Content)
			if err != nil {
				t.Fatal(err)
			}
			spkiHash := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
			now := time.Now()
			if _, err := f.store.ClaimTransaction(t.Context(), &store.Transaction{
				IntegrationID: e.integ.ID,
				TransactionID: m.TransactionID,
				PublicKeyHash: spkiHash[:],
				State:         store.TxPending,
				Claim:         "another replica",
				CreatedAt:     now.Add(-time.Minute),
				LeaseUntil:    now.Add(tc.lease),
				ExpiresAt:     now.Add(24 * time.Hour),
			}, now); err != nil {
				t.Fatalf("ClaimTransaction() = %v", err)
			}
			r := e.do(t, m, "")
			if r.Status != tc.wantStatus {
				t.Fatalf("PKIOperation(%s) = %s/%s, want %s", describe(m), statusName(r.Status), failName(r.FailInfo), statusName(tc.wantStatus))
			}
			if tc.wantStatus != scepclient.StatusPending {
				countIntegrationCerts(t, e, 1)
				return
			}
			if r.Certificates != nil {
				t.Errorf("PKIOperation(%s) PENDING carries certificates", describe(m))
			}
			content, err := scepclient.IssuerAndSubject(f.ca.Intermediate(), csr.RawSubject)
			if err != nil {
				t.Fatal(err)
			}
			poll := e.message(t, withType(scepclient.TypeCertPoll), withTxID(m.TransactionID), withSigner(m.Signer, m.Key), withContent(content))
			if r := e.do(t, poll, ""); r.Status != scepclient.StatusPending {
				t.Errorf("PKIOperation(%s) = %s/%s, want PENDING", describe(poll), statusName(r.Status), failName(r.FailInfo))
			}
			countIntegrationCerts(t, e, 0)
		})
	}
}
