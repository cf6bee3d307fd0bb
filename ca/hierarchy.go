package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // RFC 5280 §4.2.1.2 method 1 key identifier, not a signature
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Lifetimes of the hierarchy Init creates.
const (
	rootYears         = 20
	intermediateYears = 10
	raYears           = 2
	// raMargin keeps the RA certificate ending before the intermediate, so
	// that an RA is never valid under an expired issuer.
	raMargin = 30 * 24 * time.Hour
	// clockSkew backdates NotBefore so that clients with a slow clock accept
	// a certificate at once.
	clockSkew = 5 * time.Minute
)

// newID returns a random record ID: 16 lowercase hexadecimal characters.
// It appears in URLs (/crl/{caID}.crl), so it stays URL-safe.
func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("ca: new ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// subjectKeyID is the SHA-1 of the subjectPublicKey BIT STRING (RFC 5280,
// Section 4.2.1.2, method 1), computed over the encoding the certificate
// will carry.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("ca: subject key ID: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) > 0 {
		return nil, errors.New("ca: subject key ID: malformed SubjectPublicKeyInfo")
	}
	sum := sha1.Sum(spki.PublicKey.Bytes) //nolint:gosec // key identifier, see above
	return sum[:], nil
}

// signatureAlgorithm is the SHA-256 signature scheme of key: RSA PKCS #1
// v1.5 or ECDSA.
func signatureAlgorithm(key crypto.Signer) (x509.SignatureAlgorithm, error) {
	switch key.Public().(type) {
	case *rsa.PublicKey:
		return x509.SHA256WithRSA, nil
	case *ecdsa.PublicKey:
		return x509.ECDSAWithSHA256, nil
	default:
		return x509.UnknownSignatureAlgorithm, fmt.Errorf("ca: unsupported signing key %T", key.Public())
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sign creates a certificate from tmpl (filling serial, SKI and signature
// algorithm) under parent/parentKey; parent == nil makes it self-signed.
func sign(tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	alg, err := signatureAlgorithm(parentKey)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.SubjectKeyId = ski
	tmpl.SignatureAlgorithm = alg
	tmpl.BasicConstraintsValid = true
	if parent == nil {
		parent = tmpl
	} else {
		tmpl.AuthorityKeyId = parent.SubjectKeyId
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign %q: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// hierarchy is what Init creates: keys and certificates, not yet stored.
type hierarchy struct {
	rootKey, interKey crypto.Signer
	root, inter       *x509.Certificate
	raKey             *rsa.PrivateKey // nil for an RSA intermediate
	ra                *x509.Certificate
}

// newHierarchy creates the root (self-signed, 20 years, path length 1),
// the intermediate (10 years, path length 0) and, for ECDSA, the RSA RA
// end-entity certificate (PROTOCOLS.md §1.3).
func newHierarchy(cfg Config, now time.Time) (*hierarchy, error) {
	var h hierarchy
	switch cfg.KeyType {
	case KeyTypeECDSA:
		rk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("ca: generate root key: %w", err)
		}
		ik, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("ca: generate intermediate key: %w", err)
		}
		rak, err := cfg.rsaKey()
		if err != nil {
			return nil, fmt.Errorf("ca: generate RA key: %w", err)
		}
		h.rootKey, h.interKey, h.raKey = rk, ik, rak
	default:
		rk, err := cfg.rsaKey()
		if err != nil {
			return nil, fmt.Errorf("ca: generate root key: %w", err)
		}
		ik, err := cfg.rsaKey()
		if err != nil {
			return nil, fmt.Errorf("ca: generate intermediate key: %w", err)
		}
		h.rootKey, h.interKey = rk, ik
	}

	nb := now.UTC().Add(-clockSkew).Truncate(time.Second)
	name := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cfg.Org + " " + cn, Organization: []string{cfg.Org}}
	}

	var err error
	h.root, err = sign(&x509.Certificate{
		Subject:    name("Root Authority"),
		NotBefore:  nb,
		NotAfter:   nb.AddDate(rootYears, 0, 0),
		IsCA:       true,
		MaxPathLen: 1,
		KeyUsage:   x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, h.rootKey.Public(), nil, h.rootKey)
	if err != nil {
		return nil, err
	}

	h.inter, err = issueIntermediate(name("Intermediate Authority"), h.interKey.Public(), h.raKey == nil, h.root, h.rootKey, nb)
	if err != nil {
		return nil, err
	}
	if h.raKey != nil {
		h.ra, err = issueRA(name("SCEP RA"), h.raKey.Public(), h.inter, h.interKey, nb)
		if err != nil {
			return nil, err
		}
	}
	return &h, nil
}

// issueIntermediate signs an intermediate (10 years, never beyond the
// root, path length 0) under the root. ownRA: it is its own SCEP RA (an RSA
// intermediate), so it also needs digitalSignature and keyEncipherment
// (RFC 8894 §2.1.2).
func issueIntermediate(subject pkix.Name, pub crypto.PublicKey, ownRA bool, root *x509.Certificate, rootKey crypto.Signer, nb time.Time) (*x509.Certificate, error) {
	ku := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	if ownRA {
		ku |= x509.KeyUsageKeyEncipherment
	}
	return sign(&x509.Certificate{
		Subject:        subject,
		NotBefore:      nb,
		NotAfter:       minTime(nb.AddDate(intermediateYears, 0, 0), root.NotAfter),
		IsCA:           true,
		MaxPathLen:     0,
		MaxPathLenZero: true,
		KeyUsage:       ku,
	}, pub, root, rootKey)
}

// issueRA signs the RSA RA end-entity certificate of an ECDSA intermediate
// (2 years, ending raMargin before the intermediate).
func issueRA(subject pkix.Name, pub crypto.PublicKey, inter *x509.Certificate, interKey crypto.Signer, nb time.Time) (*x509.Certificate, error) {
	return sign(&x509.Certificate{
		Subject:   subject,
		NotBefore: nb,
		NotAfter:  minTime(nb.AddDate(raYears, 0, 0), inter.NotAfter.Add(-raMargin)),
		KeyUsage:  x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}, pub, inter, interKey)
}
