package scep_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/scep"
	"github.com/scepca/scepca/store"
)

// TestRenewal covers RenewalReq (PROTOCOLS.md §1.7): signed by a current
// certificate of the same integration with the same subject it succeeds;
// otherwise it is badRequest.
func TestRenewal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	renewal := func(in *store.Integration) { in.Renewal = true }
	otherInteg := f.addEndpoint(t, renewal)
	otherSubject := defaultSubject
	otherSubject.CommonName = "mallory managementAttestation UDID666"
	tests := []struct {
		name string
		// signer returns the certificate and key that sign the RenewalReq,
		// given the endpoint and the PKCSReq that enrolled there first.
		signer func(t *testing.T, e *endpoint, first *scepclient.Message, cert *x509.Certificate) (*x509.Certificate, *rsa.PrivateKey)
		opts   []reqOption
		want   scep.FailInfo // "" = SUCCESS
	}{
		{
			name: "issued certificate, new key",
			signer: func(t *testing.T, e *endpoint, first *scepclient.Message, cert *x509.Certificate) (*x509.Certificate, *rsa.PrivateKey) {
				return cert, first.Key
			},
			opts: []reqOption{withCSRKey(testKey(t, 2))},
		},
		{
			name: "issued certificate, same key (scepclient)",
			signer: func(t *testing.T, e *endpoint, first *scepclient.Message, cert *x509.Certificate) (*x509.Certificate, *rsa.PrivateKey) {
				return cert, first.Key
			},
		},
		{
			name: "revoked certificate",
			signer: func(t *testing.T, e *endpoint, first *scepclient.Message, cert *x509.Certificate) (*x509.Certificate, *rsa.PrivateKey) {
				revoke(t, e, cert)
				return cert, first.Key
			},
			want: scep.BadRequest,
		},
		{
			name: "certificate on hold",
			signer: func(t *testing.T, e *endpoint, first *scepclient.Message, cert *x509.Certificate) (*x509.Certificate, *rsa.PrivateKey) {
				if err := e.f.store.UpdateCertificateStatus(t.Context(), serialOf(cert), store.CertOnHold, cert.NotBefore, 6); err != nil {
					t.Fatal(err)
				}
				return cert, first.Key
			},
			want: scep.BadRequest,
		},
		{
			name: "certificate of another integration",
			signer: func(t *testing.T, e *endpoint, first *scepclient.Message, cert *x509.Certificate) (*x509.Certificate, *rsa.PrivateKey) {
				m, c := otherInteg.enroll(t, withKey(testKey(t, 1)))
				return c, m.Key
			},
			opts: []reqOption{withCSRKey(testKey(t, 1))},
			want: scep.BadRequest,
		},
		{
			name: "self-signed certificate",
			signer: func(t *testing.T, e *endpoint, first *scepclient.Message, cert *x509.Certificate) (*x509.Certificate, *rsa.PrivateKey) {
				// Same subject as the issued certificate, but not ours.
				self := testpki.SelfSigned(t, first.Key, "x", testpki.WithTemplate(func(c *x509.Certificate) {
					c.Subject = defaultSubject
				}))
				return self, first.Key
			},
			want: scep.BadRequest,
		},
		{
			name: "other subject",
			signer: func(t *testing.T, e *endpoint, first *scepclient.Message, cert *x509.Certificate) (*x509.Certificate, *rsa.PrivateKey) {
				return cert, first.Key
			},
			opts: []reqOption{withSubject(otherSubject)},
			want: scep.BadRequest,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := f.addEndpoint(t, renewal)
			first, cert := e.enroll(t)
			signer, key := tc.signer(t, e, first, cert)
			// scepclient reuses the PKCSReq's transactionID (a hash of the
			// key) and sends no challenge.
			opts := append([]reqOption{
				withType(scepclient.TypeRenewalReq), withTxID(first.TransactionID), withSigner(signer, key), withChallenge(""),
			}, tc.opts...)
			m := e.message(t, opts...)
			r := e.do(t, m, "")
			if tc.want != "" {
				wantFailure(t, m, r, tc.want)
				countIntegrationCerts(t, e, 1)
				return
			}
			renewed := wantSuccess(t, m, r)
			if renewed.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				t.Errorf("PKIOperation(%s) = serial %s, want a new serial", describe(m), serialOf(renewed))
			}
			if !bytes.Equal(renewed.RawSubject, cert.RawSubject) {
				t.Errorf("PKIOperation(%s) subject = %v, want %v", describe(m), renewed.Subject, cert.Subject)
			}
			checkIssued(t, e, m.Content, renewed)
			// Resending the renewal returns the same new certificate.
			m2 := e.message(t, append(opts, withContent(m.Content))...)
			again := wantSuccess(t, m2, e.do(t, m2, ""))
			if !bytes.Equal(again.Raw, renewed.Raw) {
				t.Errorf("PKIOperation(%s) resent = serial %s, want %s", describe(m2), serialOf(again), serialOf(renewed))
			}
			countIntegrationCerts(t, e, 2)
		})
	}
}

// TestRenewalCertPoll polls (CertPoll, signed like the RenewalReq by the
// old certificate) after a renewal that reused the PKCSReq's
// transactionID, as scepclient does: the answer is the renewed
// certificate, not the one being replaced.
func TestRenewalCertPoll(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, withIntegration(func(in *store.Integration) { in.Renewal = true }))
	first, old := e.enroll(t)
	renew := e.message(t, withType(scepclient.TypeRenewalReq), withTxID(first.TransactionID), withSigner(old, first.Key), withChallenge(""))
	renewed := wantSuccess(t, renew, e.do(t, renew, ""))
	content, err := scepclient.IssuerAndSubject(e.f.ca.Intermediate(), old.RawSubject)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		signer *x509.Certificate
		want   *x509.Certificate
	}{
		{"signed by the old certificate", old, renewed},
		{"signed by the PKCSReq's signer", first.Signer, old},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := e.message(t, withType(scepclient.TypeCertPoll), withTxID(first.TransactionID), withSigner(tc.signer, first.Key), withContent(content))
			got := wantSuccess(t, m, e.do(t, m, ""))
			if !bytes.Equal(got.Raw, tc.want.Raw) {
				t.Errorf("PKIOperation(%s) = serial %s, want %s", describe(m), serialOf(got), serialOf(tc.want))
			}
		})
	}
}

// TestRenewalExpired renews with a certificate that has expired by the
// service's clock: badRequest.
func TestRenewalExpired(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, withIntegration(func(in *store.Integration) { in.Renewal = true }))
	first, cert := e.enroll(t)
	later, err := scep.NewService(scep.Config{
		CA:    e.f.ca,
		Store: e.f.store,
		Now:   func() time.Time { return cert.NotAfter.Add(time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	m := e.message(t, withType(scepclient.TypeRenewalReq), withTxID(first.TransactionID), withSigner(cert, first.Key), withChallenge(""))
	out, err := later.PKIOperation(t.Context(), e.integ, marshal(t, m))
	if err != nil {
		t.Fatalf("PKIOperation(%s) = %v", describe(m), err)
	}
	wantFailure(t, m, checkReply(t, m, out), scep.BadRequest)
	countIntegrationCerts(t, e, 1)
}
