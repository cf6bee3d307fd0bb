package ca

import (
	"crypto/x509"
	"math/big"
	"testing"

	"github.com/scepca/scepca/store"
)

func TestCRL(t *testing.T) {
	t.Parallel()
	for _, keyType := range []string{KeyTypeRSA, KeyTypeECDSA} {
		t.Run(keyType, func(t *testing.T) {
			t.Parallel()
			a, st := newTestAuthority(t, keyType)
			key := cachedRSAKey(t, 2048, 1)
			var recs []*store.Certificate
			for _, user := range []string{"revoked", "held", "good"} {
				_, rec := issue(t, a, &Request{CSR: oktaCSR(t, key, user, "DEV"), IntegrationID: "i1"})
				recs = append(recs, rec)
			}
			ctx := t.Context()
			if err := st.UpdateCertificateStatus(ctx, recs[0].Serial, store.CertRevoked, testNow, 1); err != nil {
				t.Fatal(err)
			}
			if err := st.UpdateCertificateStatus(ctx, recs[1].Serial, store.CertOnHold, testNow, 0); err != nil {
				t.Fatal(err)
			}
			der, err := a.CRL(ctx, a.IntermediateID())
			if err != nil {
				t.Fatalf("CRL() = %v", err)
			}
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatalf("ParseRevocationList() = %v", err)
			}
			if err := crl.CheckSignatureFrom(a.Intermediate()); err != nil {
				t.Errorf("CRL signature: %v", err)
			}
			if !crl.NextUpdate.After(crl.ThisUpdate) || !crl.ThisUpdate.Equal(testNow) {
				t.Errorf("CRL thisUpdate %v nextUpdate %v, want %v and later", crl.ThisUpdate, crl.NextUpdate, testNow)
			}
			want := map[string]int{recs[0].Serial: 1, recs[1].Serial: reasonCertificateHold}
			if len(crl.RevokedCertificateEntries) != len(want) {
				t.Fatalf("CRL has %d entries, want %d", len(crl.RevokedCertificateEntries), len(want))
			}
			for _, e := range crl.RevokedCertificateEntries {
				s := SerialString(new(big.Int).Set(e.SerialNumber))
				if r, ok := want[s]; !ok || r != e.ReasonCode {
					t.Errorf("CRL entry %s reason %d, want %v", s, e.ReasonCode, want)
				}
			}
		})
	}
}
