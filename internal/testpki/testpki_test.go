package testpki

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scepca/scepca/internal/ber"
)

func TestRSAKeyCache(t *testing.T) {
	t.Parallel()
	a, b := NewRSAKey(t, 2048), NewRSAKey(t, 2048)
	if a != b {
		t.Errorf("NewRSAKey(2048) returned two different keys; want the cached one")
	}
	if a.N.BitLen() != 2048 {
		t.Errorf("NewRSAKey(2048) has %d bits", a.N.BitLen())
	}
	c := RSAKeyN(t, 2048, 1)
	if c.Equal(a) {
		t.Errorf("RSAKeyN(2048, 1) equals RSAKeyN(2048, 0)")
	}
	h := CA(t)
	for _, k := range []*rsa.PrivateKey{a, c} {
		if k.Equal(h.RootKey) || k.Equal(h.IntermediateKey) {
			t.Errorf("a test key equals a CA key")
		}
	}
	if got := NewRSAKey(t, 1024).N.BitLen(); got != 1024 {
		t.Errorf("NewRSAKey(1024) has %d bits", got)
	}
}

func TestNewECKey(t *testing.T) {
	t.Parallel()
	for _, c := range []elliptic.Curve{nil, elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k := NewECKey(t, c)
		want := c
		if want == nil {
			want = elliptic.P256()
		}
		if k.Curve != want {
			t.Errorf("NewECKey(%v).Curve = %v", c, k.Curve.Params().Name)
		}
	}
	if NewECKey(t, nil).Equal(NewECKey(t, nil)) {
		t.Errorf("NewECKey returned the same key twice")
	}
}

func TestSelfSigned(t *testing.T) {
	t.Parallel()
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{
		"rsa":     NewRSAKey(t, 2048),
		"ecdsa":   NewECKey(t, nil),
		"ed25519": edKey,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cert := SelfSigned(t, key, "device 1", WithTemplate(func(c *x509.Certificate) {
				c.Subject.Organization = []string{"scep-client"}
			}))
			parsed, err := x509.ParseCertificate(cert.Raw)
			if err != nil {
				t.Fatalf("x509.ParseCertificate(SelfSigned()) error: %v", err)
			}
			if err := parsed.CheckSignature(parsed.SignatureAlgorithm, parsed.RawTBSCertificate, parsed.Signature); err != nil {
				t.Errorf("SelfSigned() signature does not verify: %v", err)
			}
			if got, want := parsed.Subject.String(), "CN=device 1,O=scep-client"; got != want {
				t.Errorf("SelfSigned() subject = %q, want %q", got, want)
			}
			_, isRSA := key.(*rsa.PrivateKey)
			if got := parsed.KeyUsage&x509.KeyUsageKeyEncipherment != 0; got != isRSA {
				t.Errorf("SelfSigned() keyEncipherment = %v, want %v", got, isRSA)
			}
			if len(parsed.SubjectKeyId) == 0 || len(parsed.AuthorityKeyId) != 0 {
				t.Errorf("SelfSigned() SKI %x AKI %x; want an SKI and no AKI", parsed.SubjectKeyId, parsed.AuthorityKeyId)
			}
		})
	}
}

func TestSelfSignedCriticalAKI(t *testing.T) {
	t.Parallel()
	key := NewRSAKey(t, 2048)
	cert := SelfSigned(t, key, "windows device", WithCriticalAKI())
	_, err := x509.ParseCertificate(cert.Raw)
	if err == nil || !strings.Contains(err.Error(), "authority key identifier incorrectly marked critical") {
		t.Fatalf("x509.ParseCertificate(critical AKI) error = %v, want the critical AKI refusal", err)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("CheckSignature(own signature) error: %v", err)
	}
	if !bytes.Equal(cert.AuthorityKeyId, cert.SubjectKeyId) || len(cert.SubjectKeyId) != 20 {
		t.Errorf("AuthorityKeyId = %x, SubjectKeyId = %x; want the same 20 bytes", cert.AuthorityKeyId, cert.SubjectKeyId)
	}
	var found bool
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidAuthorityKeyID) {
			found = true
			if !e.Critical {
				t.Errorf("Extensions lists the AKI as not critical")
			}
		}
	}
	if !found {
		t.Errorf("Extensions has no AKI")
	}
	// The TBS in Raw really carries critical = TRUE on the AKI.
	marker := append(asn1Marshal(t, oidAuthorityKeyID), 0x01, 0x01, 0xff)
	if !bytes.Contains(cert.RawTBSCertificate, marker) || !bytes.Contains(cert.Raw, cert.RawTBSCertificate) {
		t.Errorf("RawTBSCertificate does not carry a critical AKI")
	}

	if openssl, err := exec.LookPath("openssl"); err == nil {
		path := filepath.Join(t.TempDir(), "cert.pem")
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(t.Context(), openssl, "x509", "-in", path, "-noout", "-text").CombinedOutput()
		if err != nil {
			t.Fatalf("openssl x509: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "X509v3 Authority Key Identifier: critical") {
			t.Errorf("openssl x509 -text does not show a critical AKI:\n%s", out)
		}
	}
}

func asn1Marshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// challengeOf returns the challengePassword of a CSR and its string tag.
func challengeOf(tb testing.TB, der []byte) (string, casn1.Tag, int) {
	tb.Helper()
	in := cryptobyte.String(der)
	var outer, info, attrs cryptobyte.String
	if !in.ReadASN1(&outer, casn1.SEQUENCE) || !outer.ReadASN1(&info, casn1.SEQUENCE) ||
		!info.SkipASN1(casn1.INTEGER) || !info.SkipASN1(casn1.SEQUENCE) || !info.SkipASN1(casn1.SEQUENCE) ||
		!info.ReadASN1(&attrs, casn1.Tag(0).Constructed().ContextSpecific()) {
		tb.Fatal("cannot parse CSR")
	}
	var value string
	var tag casn1.Tag
	n := 0
	for !attrs.Empty() {
		var a, set cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !attrs.ReadASN1(&a, casn1.SEQUENCE) || !a.ReadASN1ObjectIdentifier(&oid) || !a.ReadASN1(&set, casn1.SET) {
			tb.Fatal("cannot parse CSR attribute")
		}
		n++
		if oid.Equal(OIDChallengePassword) {
			var v cryptobyte.String
			if !set.ReadAnyASN1(&v, &tag) || !set.Empty() {
				tb.Fatal("cannot parse challengePassword")
			}
			value = string(v)
		}
	}
	return value, tag, n
}

func TestCSR(t *testing.T) {
	t.Parallel()
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subject := pkix.Name{Country: []string{"US"}, Organization: []string{"scep-client"},
		OrganizationalUnit: []string{"MDM"}, CommonName: "device 7"}
	extraExt := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2}, Value: []byte{0x1e, 0x00}}
	var un cryptobyte.Builder
	un.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 2})
		b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte("host.example")) })
		})
	})
	unstructuredName := un.BytesOrPanic()
	tests := []struct {
		name      string
		key       crypto.Signer
		challenge string
		opts      []CSROption
		wantTag   casn1.Tag
		wantAttrs int // challengePassword, extensionRequest (only with SANs or extensions), others
	}{
		{name: "rsa printable", key: NewRSAKey(t, 2048), challenge: "0123456789ABCDEF",
			wantTag: casn1.PrintableString, wantAttrs: 1},
		{name: "rsa utf8 with sans and extensions", key: NewRSAKey(t, 2048), challenge: "pässwörd_@!",
			opts: []CSROption{WithUTF8Challenge(), WithDNSNames("a.example", "b.example"),
				WithURIs("IntuneDeviceId://5f8a3c1e-0000-4000-8000-000000000001"), WithExtensions(extraExt),
				WithAttribute(unstructuredName)},
			wantTag: casn1.UTF8String, wantAttrs: 3},
		{name: "rsa pss", key: NewRSAKey(t, 2048), challenge: "secret",
			opts:    []CSROption{WithCSRTemplate(func(r *x509.CertificateRequest) { r.SignatureAlgorithm = x509.SHA256WithRSAPSS })},
			wantTag: casn1.PrintableString, wantAttrs: 1},
		{name: "ecdsa p384", key: NewECKey(t, elliptic.P384()), challenge: "secret", wantTag: casn1.PrintableString, wantAttrs: 1},
		{name: "ed25519", key: edKey, challenge: "secret", wantTag: casn1.PrintableString, wantAttrs: 1},
		{name: "no challenge", key: NewECKey(t, nil), wantAttrs: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			der := CSR(t, tc.key, subject, tc.challenge, tc.opts...)
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatalf("x509.ParseCertificateRequest(CSR()) error: %v", err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Errorf("CSR() signature does not verify: %v", err)
			}
			if got, want := csr.Subject.String(), "CN=device 7,OU=MDM,O=scep-client,C=US"; got != want {
				t.Errorf("CSR() subject = %q, want %q", got, want)
			}
			if !csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.key.Public()) {
				t.Errorf("CSR() public key differs from the key's")
			}
			challenge, tag, n := challengeOf(t, der)
			if challenge != tc.challenge || (tc.challenge != "" && tag != tc.wantTag) {
				t.Errorf("CSR() challengePassword = %q (tag %d), want %q (tag %d)", challenge, tag, tc.challenge, tc.wantTag)
			}
			if n != tc.wantAttrs {
				t.Errorf("CSR() has %d attributes, want %d", n, tc.wantAttrs)
			}
			if tc.name == "rsa utf8 with sans and extensions" {
				if diff := cmp.Diff([]string{"a.example", "b.example"}, csr.DNSNames); diff != "" {
					t.Errorf("CSR() DNS names (-want +got):\n%s", diff)
				}
				// x509 parses URIs with url.Parse, which lower-cases the scheme; the
				// DER keeps the case given.
				if len(csr.URIs) != 1 || !strings.EqualFold(csr.URIs[0].String(), "IntuneDeviceId://5f8a3c1e-0000-4000-8000-000000000001") ||
					!bytes.Contains(csr.RawTBSCertificateRequest, []byte("IntuneDeviceId://5f8a3c1e-")) {
					t.Errorf("CSR() URIs = %v, want IntuneDeviceId://5f8a3c1e-0000-4000-8000-000000000001 with its case", csr.URIs)
				}
				var found bool
				for _, e := range csr.Extensions {
					found = found || e.Id.Equal(extraExt.Id)
				}
				if !found {
					t.Errorf("CSR() lacks the requested extension %v", extraExt.Id)
				}
			}
			verifyWithOpenSSL(t, der, tc.challenge)
		})
	}
}

// verifyWithOpenSSL checks the request's signature and challengePassword with
// `openssl req`, an independent PKCS #10 parser, when openssl is installed.
func verifyWithOpenSSL(t *testing.T, der []byte, challenge string) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		return
	}
	path := filepath.Join(t.TempDir(), "csr.der")
	if err := os.WriteFile(path, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), openssl, "req", "-inform", "DER", "-in", path, "-noout", "-verify", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req -verify: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "verify OK") {
		t.Errorf("openssl req -verify did not say OK:\n%s", out)
	}
	if challenge != "" && !strings.Contains(string(out), "challengePassword") {
		t.Errorf("openssl req -text shows no challengePassword:\n%s", out)
	}
}

func TestCA(t *testing.T) {
	t.Parallel()
	h := CA(t)
	leafKey := NewECKey(t, nil)
	leaf := h.Issue(t, leafKey.Public(), "leaf", WithTemplate(func(c *x509.Certificate) {
		c.DNSNames = []string{"leaf.example"}
	}))
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         h.Roots(),
		Intermediates: h.Intermediates(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatalf("leaf.Verify() error: %v", err)
	}
	if len(chains) != 1 || len(chains[0]) != 3 {
		t.Errorf("leaf.Verify() chains = %v, want one of length 3", chains)
	}
	if got := h.Chain(); got[0] != h.Intermediate || got[1] != h.Root {
		t.Errorf("Chain() is not intermediate, root")
	}
	for _, c := range h.Chain() {
		if c.KeyUsage&x509.KeyUsageKeyEncipherment == 0 || c.KeyUsage&x509.KeyUsageDigitalSignature == 0 || !c.IsCA {
			t.Errorf("%s key usage %v, IsCA %v", c.Subject.CommonName, c.KeyUsage, c.IsCA)
		}
	}
	if !h.Intermediate.PublicKey.(*rsa.PublicKey).Equal(&h.IntermediateKey.PublicKey) {
		t.Errorf("Intermediate certificate and key do not match")
	}
	if other := CA(t); other.Root.Equal(h.Root) || !other.RootKey.Equal(h.RootKey) {
		t.Errorf("CA() twice: want new certificates over the same cached keys")
	}
}

func TestIndefinite(t *testing.T) {
	t.Parallel()
	der := CSR(t, NewECKey(t, nil), pkix.Name{CommonName: "ber"}, "secret")
	indef := Indefinite(t, der)
	if bytes.Equal(indef, der) || indef[1] != 0x80 {
		t.Fatalf("Indefinite() = %x, want an indefinite-length encoding", indef)
	}
	back, err := ber.ToDER(indef)
	if err != nil || !bytes.Equal(back, der) {
		t.Errorf("ber.ToDER(Indefinite(x)) = %x, %v; want x", back, err)
	}
}
