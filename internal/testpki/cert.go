package testpki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the subject key identifier of RFC 5280 §4.2.1.2, method (1), is SHA-1 by definition
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}

// CertOption adjusts a certificate made by SelfSigned or CA.Issue.
type CertOption func(*certConfig)

type certConfig struct {
	criticalAKI bool
	edits       []func(*x509.Certificate)
}

// WithCriticalAKI adds an AuthorityKeyIdentifier extension marked critical, as
// Windows writes into the self-signed certificate of a SCEP request. RFC 5280
// §4.2.1.1 forbids the flag and Go's x509.ParseCertificate rejects such a
// certificate ("authority key identifier incorrectly marked critical").
func WithCriticalAKI() CertOption {
	return func(c *certConfig) { c.criticalAKI = true }
}

// WithTemplate lets the caller edit the certificate template before signing (subject,
// validity, key usage, extensions, serial number, …).
func WithTemplate(edit func(*x509.Certificate)) CertOption {
	return func(c *certConfig) { c.edits = append(c.edits, edit) }
}

func randomSerial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func keyID(tb testing.TB, pub crypto.PublicKey) []byte {
	tb.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatalf("testpki: marshal public key: %v", err)
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		tb.Fatal(err)
	}
	// RFC 5280 §4.2.1.2, method (1): SHA-1 of the subjectPublicKey BIT STRING.
	sum := sha1.Sum(info.PublicKey.Bytes) //nolint:gosec // key identifier, see the import
	return sum[:]
}

// SelfSigned returns a self-signed certificate for key with subject CN=cn, like the
// signer certificate a SCEP client makes for its PKCSReq: a random serial, valid
// from an hour ago for a year, key usage digitalSignature (plus keyEncipherment for
// RSA, so a CertRep can be encrypted to it), and a subject key identifier.
//
// With WithCriticalAKI, cert.Raw holds DER that x509.ParseCertificate rejects, just
// like a Windows client's certificate. It is built this way: x509.CreateCertificate
// signs a template whose ExtraExtensions carry the critical AKI (it does not parse its
// output, so it does not object); the other fields of the returned certificate come
// from parsing a twin made from the same template with the AKI not critical, and
// then Raw, RawTBSCertificate and Signature are replaced by the real ones and the
// AKI's entry in Extensions is marked critical. cert.CheckSignature(
// cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) succeeds, and a
// PKCS #7 message signed with it embeds the Windows-style DER.
func SelfSigned(tb testing.TB, key crypto.Signer, cn string, opts ...CertOption) *x509.Certificate {
	tb.Helper()
	var cfg certConfig
	for _, o := range opts {
		o(&cfg)
	}
	ku := x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	ski := keyID(tb, key.Public())
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(tb),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     ku,
		SubjectKeyId: ski,
	}
	for _, edit := range cfg.edits {
		edit(tmpl)
	}
	if !cfg.criticalAKI {
		return create(tb, tmpl, tmpl, key.Public(), key)
	}

	aki := akiExtension(tb, tmpl.SubjectKeyId, true)
	critical := *tmpl
	critical.ExtraExtensions = append(append([]pkix.Extension(nil), tmpl.ExtraExtensions...), aki)
	der, err := x509.CreateCertificate(rand.Reader, &critical, &critical, key.Public(), key)
	if err != nil {
		tb.Fatalf("testpki: create certificate: %v", err)
	}
	aki.Critical = false
	twin := *tmpl
	twin.ExtraExtensions = append(append([]pkix.Extension(nil), tmpl.ExtraExtensions...), aki)
	cert := create(tb, &twin, &twin, key.Public(), key)

	in := cryptobyte.String(der)
	var outer, tbs cryptobyte.String
	var sig asn1.BitString
	if !in.ReadASN1(&outer, casn1.SEQUENCE) || !outer.ReadASN1Element(&tbs, casn1.SEQUENCE) ||
		!outer.SkipASN1(casn1.SEQUENCE) || !outer.ReadASN1BitString(&sig) {
		tb.Fatal("testpki: cannot split the certificate made with a critical AKI")
	}
	cert.Raw, cert.RawTBSCertificate, cert.Signature = der, tbs, sig.RightAlign()
	for i := range cert.Extensions {
		if cert.Extensions[i].Id.Equal(oidAuthorityKeyID) {
			cert.Extensions[i].Critical = true
		}
	}
	return cert
}

// akiExtension returns AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] }.
func akiExtension(tb testing.TB, id []byte, critical bool) pkix.Extension {
	tb.Helper()
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(id) })
	})
	return pkix.Extension{Id: oidAuthorityKeyID, Critical: critical, Value: b.BytesOrPanic()}
}

func create(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatalf("testpki: create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("testpki: parse certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	return cert
}

// Hierarchy is a root CA and an intermediate CA beneath it, with their keys.
type Hierarchy struct {
	Root            *x509.Certificate
	RootKey         *rsa.PrivateKey
	Intermediate    *x509.Certificate
	IntermediateKey *rsa.PrivateKey
}

// CA returns a fresh two-level hierarchy: "scepca test root" (RSA 2048, path length
// 1) and "scepca test intermediate" (RSA 2048, path length 0), both with key usage
// certSign, cRLSign, digitalSignature and keyEncipherment so the intermediate can act
// as a SCEP CA that decrypts requests and signs replies. Both are valid from an hour
// ago for ten years. The RSA keys are cached (distinct from NewRSAKey's); the
// certificates are new on every call.
func CA(tb testing.TB) *Hierarchy {
	tb.Helper()
	h := &Hierarchy{RootKey: rsaKey(tb, 2048, rootKeyIndex), IntermediateKey: rsaKey(tb, 2048, intermediateKeyIndex)}
	now := time.Now()
	ku := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	root := &x509.Certificate{
		SerialNumber:          randomSerial(tb),
		Subject:               pkix.Name{CommonName: "scepca test root", Organization: []string{"scepca"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              ku,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	h.Root = create(tb, root, root, &h.RootKey.PublicKey, h.RootKey)
	inter := &x509.Certificate{
		SerialNumber:          randomSerial(tb),
		Subject:               pkix.Name{CommonName: "scepca test intermediate", Organization: []string{"scepca"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              ku,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	h.Intermediate = create(tb, inter, h.Root, &h.IntermediateKey.PublicKey, h.RootKey)
	return h
}

// Issue signs a leaf certificate for pub with the intermediate. The default leaf has
// subject CN=cn, a random serial, validity from an hour ago for 90 days, key usage
// digitalSignature and extended key usage clientAuth; options edit the template.
func (h *Hierarchy) Issue(tb testing.TB, pub crypto.PublicKey, cn string, opts ...CertOption) *x509.Certificate {
	tb.Helper()
	var cfg certConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.criticalAKI {
		tb.Fatal("testpki: Issue does not support WithCriticalAKI")
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(tb),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, edit := range cfg.edits {
		edit(tmpl)
	}
	return create(tb, tmpl, h.Intermediate, pub, h.IntermediateKey)
}

// Roots returns a pool holding the root, for x509.VerifyOptions.Roots.
func (h *Hierarchy) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(h.Root)
	return p
}

// Intermediates returns a pool holding the intermediate, for
// x509.VerifyOptions.Intermediates.
func (h *Hierarchy) Intermediates() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(h.Intermediate)
	return p
}

// Chain returns the intermediate then the root, the order of a GetCACert reply.
func (h *Hierarchy) Chain() []*x509.Certificate {
	return []*x509.Certificate{h.Intermediate, h.Root}
}
