package ca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// TestLint feeds templates that break the profile to the lint step and
// checks that none would reach the real key.
func TestLint(t *testing.T) {
	t.Parallel()
	a, _ := newTestAuthority(t, KeyTypeRSA)
	csr := newCSR(t, ecdsaKey(t, p256), &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "device.example.com"},
		URIs:    []*url.URL{{Scheme: "tag", Opaque: "microsoft.com,2022-09-14:sid:S-1-5-21-1"}},
	})
	tests := []struct {
		name    string
		mutate  func(*x509.Certificate)
		wantErr bool
	}{
		{name: "profile as built", mutate: func(*x509.Certificate) {}},
		{name: "keyEncipherment added", mutate: func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageKeyEncipherment }, wantErr: true},
		{name: "serverAuth added", mutate: func(c *x509.Certificate) {
			c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		}, wantErr: true},
		{name: "CA:true", mutate: func(c *x509.Certificate) { c.IsCA = true }, wantErr: true},
		{name: "no basic constraints", mutate: func(c *x509.Certificate) { c.BasicConstraintsValid = false }, wantErr: true},
		{name: "subject rewritten", mutate: func(c *x509.Certificate) {
			c.RawSubject = nil
			c.Subject = pkix.Name{CommonName: "device.example.com", Organization: []string{"Injected"}}
		}, wantErr: true},
		{name: "CN copied into a DNS SAN", mutate: func(c *x509.Certificate) { c.DNSNames = []string{"device.example.com"} }, wantErr: true},
		{name: "URI SAN dropped", mutate: func(c *x509.Certificate) { c.URIs = nil }, wantErr: true},
		{name: "NotAfter beyond the intermediate", mutate: func(c *x509.Certificate) {
			c.NotAfter = a.Intermediate().NotAfter.Add(time.Hour)
		}, wantErr: true},
		{name: "NotBefore before the intermediate", mutate: func(c *x509.Certificate) {
			c.NotBefore = a.Intermediate().NotBefore.Add(-time.Hour)
		}, wantErr: true},
		{name: "CRL pointer missing", mutate: func(c *x509.Certificate) { c.CRLDistributionPoints = nil }, wantErr: true},
		{name: "caIssuers added", mutate: func(c *x509.Certificate) {
			c.IssuingCertificateURL = []string{testPublicURL + "/ca.crt"}
		}, wantErr: true},
		{name: "serial too long", mutate: func(c *x509.Certificate) { c.SerialNumber = new(big.Int).Lsh(big.NewInt(1), 200) }, wantErr: true},
		{name: "unknown critical extension", mutate: func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}
		}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl, err := a.template(a.snap(), csr, DefaultValidity)
			if err != nil {
				t.Fatalf("template() = %v", err)
			}
			tc.mutate(tmpl)
			err = a.lint(a.snap(), tmpl, csr)
			if (err != nil) != tc.wantErr {
				t.Errorf("lint(%q) = %v, want error %v", tc.name, err, tc.wantErr)
			}
			if errors.Is(err, ErrPolicy) {
				t.Errorf("lint(%q) = %v, a profile violation is ours, not ErrPolicy", tc.name, err)
			}
		})
	}
}
