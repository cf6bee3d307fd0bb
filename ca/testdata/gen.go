//go:build ignore

// gen writes the CSR fixtures that are too slow to make at test time:
// an RSA-8192 key takes tens of seconds to generate under -race. The
// private key is discarded.
//
// Run from the ca directory: go run testdata/gen.go
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log"
	"os"
)

func main() {
	key, err := rsa.GenerateKey(rand.Reader, 8192)
	if err != nil {
		log.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "rsa8192 managementAttestation TESTDEVICE"},
	}, key)
	if err != nil {
		log.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if err := os.WriteFile("testdata/csr-rsa8192.pem", p, 0o644); err != nil {
		log.Fatal(err)
	}
}
