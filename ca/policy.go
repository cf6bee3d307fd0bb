package ca

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
)

// Accepted RSA modulus sizes, inclusive (DESIGN.md §2).
const (
	minRSABits = 2048
	maxRSABits = 4096
)

// CheckCSR applies the key policy of DESIGN.md §2 and PROTOCOLS.md §1.8:
// an RSA key of 2048 to 4096 bits or an ECDSA key on P-256 or P-384, a
// valid self-signature, and a subject or at least one subject alternative
// name. A refusal wraps ErrPolicy (SCEP failInfo badRequest) and says why;
// the reason is for logs, not for the client.
func CheckCSR(csr *x509.CertificateRequest) error {
	if csr == nil {
		return fmt.Errorf("%w: no CSR", ErrPolicy)
	}
	switch pub := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if pub.N == nil {
			return fmt.Errorf("%w: RSA key without modulus", ErrPolicy)
		}
		if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("%w: RSA key of %d bits, want %d to %d", ErrPolicy, bits, minRSABits, maxRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return fmt.Errorf("%w: RSA public exponent %d, want an odd number of at least 3", ErrPolicy, pub.E)
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ECDSA curve %s, want P-256 or P-384", ErrPolicy, curveName(pub.Curve))
		}
	case ed25519.PublicKey:
		return fmt.Errorf("%w: Ed25519 key, want RSA or ECDSA", ErrPolicy)
	default:
		return fmt.Errorf("%w: %v public key, want RSA or ECDSA", ErrPolicy, csr.PublicKeyAlgorithm)
	}
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("%w: CSR signature does not verify: %v", ErrPolicy, err)
	}
	if len(csr.Subject.Names) == 0 && len(csr.DNSNames)+len(csr.EmailAddresses)+len(csr.IPAddresses)+len(csr.URIs) == 0 {
		return fmt.Errorf("%w: empty subject and no subject alternative name", ErrPolicy)
	}
	return nil
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "unknown"
	}
	return c.Params().Name
}
