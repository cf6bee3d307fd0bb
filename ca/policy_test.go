package ca

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"errors"
	"net/url"
	"testing"
)

//go:embed testdata/csr-rsa8192.pem
var csrRSA8192PEM []byte

func TestCheckCSR(t *testing.T) {
	t.Parallel()
	subject := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "alice managementAttestation UDID123"}}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("ed25519.GenerateKey() = %v", err)
	}
	block, _ := pem.Decode(csrRSA8192PEM)
	if block == nil {
		t.Fatalf("testdata/csr-rsa8192.pem holds no PEM block")
	}

	tests := []struct {
		name string
		// csr builds the request; keys come from the per-binary cache.
		csr  func(t *testing.T) *x509.CertificateRequest
		want error
	}{
		{name: "RSA 1024 refused", csr: rsaCSR(1024, subject), want: ErrPolicy},
		{name: "RSA 2048", csr: rsaCSR(2048, subject)},
		{name: "RSA 3072", csr: rsaCSR(3072, subject)},
		{name: "RSA 4096", csr: rsaCSR(4096, subject)},
		{name: "RSA 8192 refused", csr: func(t *testing.T) *x509.CertificateRequest {
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Fatalf("ParseCertificateRequest(rsa8192) = %v", err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Fatalf("testdata/csr-rsa8192.pem: CheckSignature() = %v, want a valid fixture", err)
			}
			return csr
		}, want: ErrPolicy},
		{name: "ECDSA P-224 refused", csr: ecCSR(elliptic.P224(), subject), want: ErrPolicy},
		{name: "ECDSA P-256", csr: ecCSR(elliptic.P256(), subject)},
		{name: "ECDSA P-384", csr: ecCSR(elliptic.P384(), subject)},
		{name: "ECDSA P-521 refused", csr: ecCSR(elliptic.P521(), subject), want: ErrPolicy},
		{name: "Ed25519 refused", csr: func(t *testing.T) *x509.CertificateRequest {
			return newCSR(t, edKey, subject)
		}, want: ErrPolicy},
		{name: "tampered signature refused", csr: func(t *testing.T) *x509.CertificateRequest {
			csr := rsaCSR(2048, subject)(t)
			bad := *csr
			bad.Signature = bytes.Clone(csr.Signature)
			bad.Signature[len(bad.Signature)/2] ^= 0x01
			return &bad
		}, want: ErrPolicy},
		{name: "tampered subject refused", csr: func(t *testing.T) *x509.CertificateRequest {
			csr := ecCSR(elliptic.P256(), subject)(t)
			bad := *csr
			bad.RawTBSCertificateRequest = bytes.Replace(csr.RawTBSCertificateRequest, []byte("alice"), []byte("mallo"), 1)
			return &bad
		}, want: ErrPolicy},
		{name: "RSA even exponent refused", csr: func(t *testing.T) *x509.CertificateRequest {
			return &x509.CertificateRequest{PublicKey: &rsa.PublicKey{N: cachedRSAKey(t, 2048, 0).N, E: 65536}}
		}, want: ErrPolicy},
		{name: "empty subject without SAN refused", csr: ecCSR(elliptic.P256(), &x509.CertificateRequest{}), want: ErrPolicy},
		{name: "empty subject with URI SAN", csr: ecCSR(elliptic.P256(), &x509.CertificateRequest{
			URIs: []*url.URL{{Scheme: "tag", Opaque: "microsoft.com,2022-09-14:sid:S-1-5-21-1"}},
		})},
		{name: "nil", csr: func(*testing.T) *x509.CertificateRequest { return nil }, want: ErrPolicy},
		{name: "no key", csr: func(*testing.T) *x509.CertificateRequest { return &x509.CertificateRequest{} }, want: ErrPolicy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckCSR(tc.csr(t))
			if !errors.Is(err, tc.want) { // errors.Is(nil, nil) is true
				t.Errorf("CheckCSR(%q) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
}

// rsaCSR returns a builder of a CSR with the cached RSA key of bits.
func rsaCSR(bits int, tmpl *x509.CertificateRequest) func(t *testing.T) *x509.CertificateRequest {
	return func(t *testing.T) *x509.CertificateRequest {
		return newCSR(t, cachedRSAKey(t, bits, 0), tmpl)
	}
}

// ecCSR returns a builder of a CSR with a fresh key on c.
func ecCSR(c elliptic.Curve, tmpl *x509.CertificateRequest) func(t *testing.T) *x509.CertificateRequest {
	return func(t *testing.T) *x509.CertificateRequest {
		return newCSR(t, ecdsaKey(t, c), tmpl)
	}
}

// keyOf is a signer of each accepted key kind, for table tests.
func keyOf(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	switch kind {
	case "rsa2048":
		return cachedRSAKey(t, 2048, 0)
	case "rsa4096":
		return cachedRSAKey(t, 4096, 0)
	case "p256":
		return ecdsaKey(t, elliptic.P256())
	case "p384":
		return ecdsaKey(t, elliptic.P384())
	}
	t.Fatalf("keyOf(%q): unknown kind", kind)
	return nil
}
