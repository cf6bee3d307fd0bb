package ca

import (
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"testing"
)

// FuzzCheckCSR feeds arbitrary bytes through the CSR parser and the policy:
// nothing panics, and every refusal wraps ErrPolicy.
func FuzzCheckCSR(f *testing.F) {
	for _, key := range []any{cachedRSAKey(f, 2048, 1), ecdsaKey(f, elliptic.P256()), ecdsaKey(f, elliptic.P224())} {
		der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "alice managementAttestation UDID1"}}, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	if b, err := os.ReadFile("testdata/csr-rsa8192.pem"); err == nil {
		if blk, _ := pem.Decode(b); blk != nil {
			f.Add(blk.Bytes)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		csr, err := x509.ParseCertificateRequest(b)
		if err != nil {
			return
		}
		if err := CheckCSR(csr); err != nil && !errors.Is(err, ErrPolicy) {
			t.Errorf("CheckCSR() = %v, want nil or ErrPolicy", err)
		}
	})
}
