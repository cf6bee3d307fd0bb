package testpki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDChallengePassword is the PKCS #9 challengePassword attribute (RFC 2985,
// Section 5.4.1) that carries the SCEP challenge (RFC 8894, Section 2.2).
var OIDChallengePassword = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}

// CSROption adjusts a request made by CSR.
type CSROption func(*csrConfig)

type csrConfig struct {
	challengeTag casn1.Tag
	attributes   [][]byte
	edits        []func(*x509.CertificateRequest)
	uris         []string
}

// WithUTF8Challenge encodes the challengePassword as UTF8String instead of
// PrintableString.
func WithUTF8Challenge() CSROption {
	return func(c *csrConfig) { c.challengeTag = casn1.UTF8String }
}

// WithDNSNames adds DNS subjectAltNames (in an extensionRequest attribute).
func WithDNSNames(names ...string) CSROption {
	return WithCSRTemplate(func(r *x509.CertificateRequest) { r.DNSNames = append(r.DNSNames, names...) })
}

// WithURIs adds URI subjectAltNames, e.g. Intune's "IntuneDeviceId://{id}", written
// exactly as given (scheme case included).
func WithURIs(uris ...string) CSROption {
	return func(c *csrConfig) { c.uris = append(c.uris, uris...) }
}

// WithExtensions adds requested extensions (in the extensionRequest attribute).
func WithExtensions(exts ...pkix.Extension) CSROption {
	return WithCSRTemplate(func(r *x509.CertificateRequest) { r.ExtraExtensions = append(r.ExtraExtensions, exts...) })
}

// WithAttribute adds a raw DER Attribute (SEQUENCE { type, SET OF value }) to the
// request, such as unstructuredName.
func WithAttribute(der []byte) CSROption {
	return func(c *csrConfig) { c.attributes = append(c.attributes, der) }
}

// WithCSRTemplate edits the x509.CertificateRequest template before it is signed:
// email or IP SANs, SignatureAlgorithm, and so on.
func WithCSRTemplate(edit func(*x509.CertificateRequest)) CSROption {
	return func(c *csrConfig) { c.edits = append(c.edits, edit) }
}

// CSR returns a PKCS #10 request (RFC 2986) in DER for key and subject carrying
// challenge in a challengePassword attribute (omitted when challenge is empty).
// The challenge bytes are written as they are; PrintableString's character set is
// not enforced, so a test can mimic a client that breaks it.
//
// x509.CreateCertificateRequest cannot express challengePassword (its Attributes
// field only holds SEQUENCE-valued attributes), so CSR lets it build the request
// (subject, key, extensionRequest with SANs and extensions, signature algorithm),
// splices the attribute into the [0] attributes SET of the CertificationRequestInfo
// (in DER SET OF order), and signs the result again with key and the same
// algorithm. Supported keys: RSA (PKCS #1 v1.5 or PSS), ECDSA and Ed25519.
func CSR(tb testing.TB, key crypto.Signer, subject pkix.Name, challenge string, opts ...CSROption) []byte {
	tb.Helper()
	cfg := csrConfig{challengeTag: casn1.PrintableString}
	for _, o := range opts {
		o(&cfg)
	}
	tmpl := &x509.CertificateRequest{Subject: subject}
	for _, s := range cfg.uris {
		u, err := url.Parse(s)
		if err != nil {
			tb.Fatalf("testpki: URI SAN %q: %v", s, err)
		}
		// url.Parse lower-cases the scheme; keep the caller's spelling, since a SAN
		// such as Intune's "IntuneDeviceId://…" is compared byte for byte.
		if i := strings.IndexByte(s, ':'); i > 0 && strings.EqualFold(s[:i], u.Scheme) {
			u.Scheme = s[:i]
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	for _, edit := range cfg.edits {
		edit(tmpl)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		tb.Fatalf("testpki: create CSR: %v", err)
	}
	attrs := slices.Clone(cfg.attributes)
	if challenge != "" {
		var b cryptobyte.Builder
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(OIDChallengePassword)
			b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(cfg.challengeTag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(challenge)) })
			})
		})
		attrs = append(attrs, b.BytesOrPanic())
	}
	if len(attrs) == 0 {
		return der
	}
	return addAttributes(tb, der, key, attrs)
}

// addAttributes re-signs the request der with attrs added to its attributes.
func addAttributes(tb testing.TB, der []byte, key crypto.Signer, attrs [][]byte) []byte {
	tb.Helper()
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		tb.Fatalf("testpki: parse CSR: %v", err)
	}
	// CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }
	// CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, attributes [0] IMPLICIT SET OF }
	in := cryptobyte.String(der)
	var outer, info, version, name, spki, existing, sigAlg cryptobyte.String
	tagAttributes := casn1.Tag(0).Constructed().ContextSpecific()
	if !in.ReadASN1(&outer, casn1.SEQUENCE) || !outer.ReadASN1(&info, casn1.SEQUENCE) ||
		!outer.ReadASN1Element(&sigAlg, casn1.SEQUENCE) ||
		!info.ReadASN1Element(&version, casn1.INTEGER) || !info.ReadASN1Element(&name, casn1.SEQUENCE) ||
		!info.ReadASN1Element(&spki, casn1.SEQUENCE) || !info.ReadASN1(&existing, tagAttributes) || !info.Empty() {
		tb.Fatal("testpki: cannot split the CSR made by x509.CreateCertificateRequest")
	}
	for !existing.Empty() {
		var a cryptobyte.String
		if !existing.ReadASN1Element(&a, casn1.SEQUENCE) {
			tb.Fatal("testpki: malformed CSR attribute")
		}
		attrs = append(attrs, a)
	}
	slices.SortFunc(attrs, bytes.Compare) // DER orders a SET OF by encoding

	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(version)
		b.AddBytes(name)
		b.AddBytes(spki)
		b.AddASN1(tagAttributes, func(b *cryptobyte.Builder) {
			for _, a := range attrs {
				b.AddBytes(a)
			}
		})
	})
	tbs := b.BytesOrPanic()
	sig := sign(tb, key, csr.SignatureAlgorithm, tbs)

	var out cryptobyte.Builder
	out.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddBytes(sigAlg)
		b.AddASN1BitString(sig)
	})
	der = out.BytesOrPanic()
	parsed, err := x509.ParseCertificateRequest(der)
	if err != nil {
		tb.Fatalf("testpki: parse re-signed CSR: %v", err)
	}
	if err := parsed.CheckSignature(); err != nil {
		tb.Fatalf("testpki: re-signed CSR does not verify: %v", err)
	}
	return der
}

// sign signs msg with key as the signature algorithm alg requires.
func sign(tb testing.TB, key crypto.Signer, alg x509.SignatureAlgorithm, msg []byte) []byte {
	tb.Helper()
	var opts crypto.SignerOpts
	switch alg {
	case x509.SHA256WithRSA, x509.ECDSAWithSHA256:
		opts = crypto.SHA256
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384:
		opts = crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512:
		opts = crypto.SHA512
	case x509.SHA256WithRSAPSS:
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	case x509.SHA384WithRSAPSS:
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA384}
	case x509.SHA512WithRSAPSS:
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA512}
	case x509.PureEd25519:
		opts = crypto.Hash(0)
	default:
		tb.Fatalf("testpki: CSR signature algorithm %v is not supported", alg)
	}
	sig, err := crypto.SignMessage(key, rand.Reader, msg, opts)
	if err != nil {
		tb.Fatalf("testpki: sign CSR: %v", err)
	}
	return sig
}
