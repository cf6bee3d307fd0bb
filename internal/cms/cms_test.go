package cms

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scepca/scepca/internal/ber"
)

// The package's tests generate their PKI at run time without internal/testpki, so
// that internal/cms depends on nothing of ours but internal/ber, tests included.

var keys struct {
	sync.Once
	a, b *rsa.PrivateKey
	err  error
}

// testKeys returns two RSA-2048 keys shared by all tests (key generation is slow).
func testKeys(tb testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	tb.Helper()
	keys.Do(func() {
		if keys.a, keys.err = rsa.GenerateKey(rand.Reader, 2048); keys.err != nil {
			return
		}
		keys.b, keys.err = rsa.GenerateKey(rand.Reader, 2048)
	})
	if keys.err != nil {
		tb.Fatal(keys.err)
	}
	return keys.a, keys.b
}

// newCert returns a self-signed certificate for pub, signed by signer, with a
// subject key identifier and a serial number that needs more than 8 bytes.
func newCert(tb testing.TB, cn string, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	tb.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	ski := sha1.Sum(spki)
	serial := new(big.Int).Lsh(big.NewInt(0x1234567), 80)
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(int64(len(cn)))),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"scepca test"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		SubjectKeyId: ski[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

type recipient struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

func testRecipients(tb testing.TB) (a, b recipient) {
	tb.Helper()
	ka, kb := testKeys(tb)
	return recipient{newCert(tb, "recipient a", &ka.PublicKey, ka), ka},
		recipient{newCert(tb, "recipient b", &kb.PublicKey, kb), kb}
}

// allParams is every supported combination, in canonical form.
func allParams() []Params {
	kts := []Params{
		{KeyTransport: RSAPKCS1v15},
		{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA1},
		{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA224},
		{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA256},
		{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA384},
		{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA512},
		{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA256, OAEPMGFHash: crypto.SHA1},
		{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA1, OAEPMGFHash: crypto.SHA512},
	}
	var all []Params
	for _, c := range ContentEncryptions() {
		for _, kt := range kts {
			p := kt
			p.ContentEncryption = c
			all = append(all, p)
			if info, _ := c.info(); info.gcm {
				p.Authenticated = true
				all = append(all, p)
			}
		}
	}
	return all
}

func mustEncrypt(tb testing.TB, plaintext []byte, cert *x509.Certificate, p Params) []byte {
	tb.Helper()
	env, err := Encrypt(plaintext, cert, p)
	if err != nil {
		tb.Fatalf("Encrypt(%v) error: %v", p, err)
	}
	return env
}

func mustIndefinite(tb testing.TB, der []byte) []byte {
	tb.Helper()
	b, err := ber.ToIndefinite(der)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	a, _ := testRecipients(t)
	for _, p := range allParams() {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 1000} {
				plaintext := bytes.Repeat([]byte{byte(n)}, n)
				env := mustEncrypt(t, plaintext, a.cert, p)
				for form, in := range map[string][]byte{"DER": env, "BER": mustIndefinite(t, env)} {
					got, gotParams, err := Decrypt(in, a.cert, a.key)
					if err != nil {
						t.Fatalf("Decrypt(%s, %d bytes) error: %v", form, n, err)
					}
					if !bytes.Equal(got, plaintext) {
						t.Errorf("Decrypt(%s, %d bytes) = %x, want %x", form, n, got, plaintext)
					}
					if gotParams != p {
						t.Errorf("Decrypt(%s, %d bytes) params = %v (%#v), want %v", form, n, gotParams, gotParams, p)
					}
				}
			}
		})
	}
}

func TestEncryptCanonicalisesOAEPDefaults(t *testing.T) {
	t.Parallel()
	a, _ := testRecipients(t)
	env := mustEncrypt(t, []byte("x"), a.cert, Params{ContentEncryption: AES128CBC, KeyTransport: RSAOAEP})
	_, p, err := Decrypt(env, a.cert, a.key)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Params{ContentEncryption: AES128CBC, KeyTransport: RSAOAEP, OAEPHash: crypto.SHA1}); p != want {
		t.Errorf("Decrypt() params = %#v, want %#v", p, want)
	}
	// SHA-1 defaults are omitted: an empty RSAES-OAEP-params SEQUENCE, as OpenSSL writes.
	if !bytes.Contains(env, []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07, 0x30, 0x00}) {
		t.Errorf("Encrypt(OAEP SHA-1) did not write empty RSAES-OAEP-params: %x", env)
	}
}

func TestConcurrentEncrypt(t *testing.T) {
	t.Parallel()
	a, _ := testRecipients(t)
	all := allParams()
	var wg sync.WaitGroup
	for i := range 32 {
		p := all[i%len(all)]
		wg.Go(func() {
			plaintext := []byte(fmt.Sprintf("message %d", i))
			env, err := Encrypt(plaintext, a.cert, p)
			if err != nil {
				t.Errorf("Encrypt(%v) error: %v", p, err)
				return
			}
			got, gp, err := Decrypt(env, a.cert, a.key)
			if err != nil || !bytes.Equal(got, plaintext) || gp != p {
				t.Errorf("Decrypt(Encrypt(%v)) = %q, %v, %v", p, got, gp, err)
			}
		})
	}
	wg.Wait()
}

func TestParamsString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Params
		want string
	}{
		{Params{ContentEncryption: AES256CBC, KeyTransport: RSAOAEP, OAEPHash: crypto.SHA256}, "aes256-cbc/rsa-oaep-sha256"},
		{Params{ContentEncryption: AES128CBC, KeyTransport: RSAOAEP}, "aes128-cbc/rsa-oaep-sha1"},
		{Params{ContentEncryption: DESCBC, KeyTransport: RSAPKCS1v15}, "des-cbc/rsa-pkcs1v15"},
		{Params{ContentEncryption: DESEDE3CBC, KeyTransport: RSAPKCS1v15}, "3des-cbc/rsa-pkcs1v15"},
		{Params{ContentEncryption: AES192GCM, KeyTransport: RSAOAEP, OAEPHash: crypto.SHA512, OAEPMGFHash: crypto.SHA1},
			"aes192-gcm/rsa-oaep-sha512-mgf1-sha1"},
		{Params{ContentEncryption: AES128GCM, KeyTransport: RSAPKCS1v15, Authenticated: true}, "aes128-gcm/rsa-pkcs1v15/authenveloped"},
		{Params{}, "unknown-cipher(0)/unknown-key-transport(0)"},
		{Params{ContentEncryption: 99, KeyTransport: RSAOAEP, OAEPHash: crypto.MD5}, "unknown-cipher(99)/rsa-oaep-unknown-hash(2)"},
		{Params{ContentEncryption: AES128CBC, KeyTransport: RSAOAEP, OAEPMGFHash: crypto.SHA256}, "aes128-cbc/rsa-oaep-sha1-mgf1-sha256"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestStrength(t *testing.T) {
	t.Parallel()
	want := map[ContentEncryption]Strength{
		DESCBC: StrengthDES, DESEDE3CBC: Strength3DES,
		AES128CBC: StrengthAES, AES192CBC: StrengthAES, AES256CBC: StrengthAES,
		AES128GCM: StrengthAES, AES192GCM: StrengthAES, AES256GCM: StrengthAES,
	}
	for c, s := range want {
		if got := (Params{ContentEncryption: c}).Strength(); got != s {
			t.Errorf("Params{%v}.Strength() = %v, want %v", c, got, s)
		}
	}
	if !(Strength(0) < StrengthDES && StrengthDES < Strength3DES && Strength3DES < StrengthAES) {
		t.Errorf("strengths are not ordered des < 3des < aes")
	}
	for _, s := range []Strength{StrengthDES, Strength3DES, StrengthAES} {
		got, err := ParseStrength(strings.ToUpper(s.String()))
		if err != nil || got != s {
			t.Errorf("ParseStrength(%q) = %v, %v; want %v", strings.ToUpper(s.String()), got, err, s)
		}
	}
	if _, err := ParseStrength("rc2"); err == nil {
		t.Errorf("ParseStrength(rc2) succeeded, want error")
	}
	for _, c := range ContentEncryptions() {
		if got := contentEncryptionByOID(c.OID()); got != c {
			t.Errorf("contentEncryptionByOID(%v.OID()) = %v", c, got)
		}
	}
}

func TestEncryptErrors(t *testing.T) {
	t.Parallel()
	a, _ := testRecipients(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecCert := newCert(t, "ec", ec.Public(), ec)
	ok := Params{ContentEncryption: AES128CBC, KeyTransport: RSAPKCS1v15}
	if _, err := Encrypt(nil, ecCert, ok); err == nil || !strings.Contains(err.Error(), "RSA") {
		t.Errorf("Encrypt(ECDSA recipient) error = %v, want one naming RSA", err)
	}
	if _, err := Encrypt(nil, nil, ok); err == nil {
		t.Errorf("Encrypt(nil recipient) succeeded")
	}
	for _, p := range []Params{
		{},
		{ContentEncryption: 42, KeyTransport: RSAPKCS1v15},
		{ContentEncryption: AES128CBC},
		{ContentEncryption: AES128CBC, KeyTransport: RSAPKCS1v15, OAEPHash: crypto.SHA256},
		{ContentEncryption: AES128CBC, KeyTransport: RSAOAEP, OAEPHash: crypto.MD5},
		{ContentEncryption: AES128CBC, KeyTransport: RSAOAEP, OAEPMGFHash: crypto.SHA3_256},
		{ContentEncryption: AES128CBC, KeyTransport: RSAPKCS1v15, Authenticated: true},
	} {
		if _, err := Encrypt(nil, a.cert, p); !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("Encrypt(%#v) error = %v, want ErrUnsupportedAlgorithm", p, err)
		}
	}
}

func TestDecryptWrongKey(t *testing.T) {
	t.Parallel()
	a, b := testRecipients(t)
	for _, p := range allParams() {
		env := mustEncrypt(t, []byte("secret content"), a.cert, p)
		got, _, err := Decrypt(env, a.cert, b.key)
		info, _ := p.ContentEncryption.info()
		if p.KeyTransport == RSAPKCS1v15 && !info.gcm && err == nil {
			// Implicit rejection hands CBC a random key; about one time in 256 the
			// padding happens to look valid. The content must still be garbage.
			if bytes.Equal(got, []byte("secret content")) {
				t.Errorf("Decrypt(%v, wrong key) returned the plaintext", p)
			}
			continue
		}
		if !errors.Is(err, ErrDecrypt) {
			t.Errorf("Decrypt(%v, wrong key) error = %v, want ErrDecrypt", p, err)
		}
	}
}

// replaceOnce replaces the only occurrence of old in b.
func replaceOnce(tb testing.TB, b, old, new []byte) []byte {
	tb.Helper()
	if n := bytes.Count(b, old); n != 1 {
		tb.Fatalf("found %x %d times, want once", old, n)
	}
	return bytes.Replace(b, old, new, 1)
}

func oidBytes(tb testing.TB, oid asn1.ObjectIdentifier) []byte {
	tb.Helper()
	b, err := asn1.Marshal(oid)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// part is a hand-built envelope, for inputs Encrypt would never produce.
type part struct {
	contentType  asn1.ObjectIdentifier // default EnvelopedData
	recipients   [][]byte              // DER RecipientInfos
	contentAlg   []byte                // DER AlgorithmIdentifier
	ciphertext   []byte
	chunked      bool   // encryptedContent as [0] constructed OCTET STRING chunks
	authAttrs    []byte // content of [1] authAttrs (AuthEnvelopedData)
	mac          []byte // AuthEnvelopedData
	trailingBody []byte
}

func (e part) build(tb testing.TB) []byte {
	tb.Helper()
	ct := e.contentType
	if ct == nil {
		ct = oidEnvelopedData
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(ct)
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(0)
				b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
					for _, r := range e.recipients {
						b.AddBytes(r)
					}
				})
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidData)
					b.AddBytes(e.contentAlg)
					if e.chunked {
						b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
							for c := e.ciphertext; len(c) > 0; {
								n := min(5, len(c))
								b.AddASN1OctetString(c[:n])
								c = c[n:]
							}
						})
					} else {
						b.AddASN1(tagImplicit0, func(b *cryptobyte.Builder) { b.AddBytes(e.ciphertext) })
					}
				})
				if e.authAttrs != nil {
					b.AddASN1(tagExplicit1, func(b *cryptobyte.Builder) { b.AddBytes(e.authAttrs) })
				}
				if e.mac != nil {
					b.AddASN1OctetString(e.mac)
				}
				b.AddBytes(e.trailingBody)
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// ktriFor returns a KeyTransRecipientInfo for cert carrying cek, wrapped with
// PKCS #1 v1.5 unless alg (a DER AlgorithmIdentifier) and ek are given.
func ktriFor(tb testing.TB, cert *x509.Certificate, bySKI bool, cek []byte, alg, ek []byte) []byte {
	tb.Helper()
	if ek == nil {
		var err error
		//nolint:staticcheck // SA1019: testing rsaEncryption key transport.
		if ek, err = rsa.EncryptPKCS1v15(rand.Reader, cert.PublicKey.(*rsa.PublicKey), cek); err != nil {
			tb.Fatal(err)
		}
	}
	if alg == nil {
		alg = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00}
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if bySKI {
			b.AddASN1Int64(2)
			b.AddASN1(tagImplicit0, func(b *cryptobyte.Builder) { b.AddBytes(cert.SubjectKeyId) })
		} else {
			b.AddASN1Int64(0)
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(cert.RawIssuer)
				b.AddASN1BigInt(cert.SerialNumber)
			})
		}
		b.AddBytes(alg)
		b.AddASN1OctetString(ek)
	})
	der, err := b.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func cbcAlg(tb testing.TB, c ContentEncryption, iv []byte) []byte {
	tb.Helper()
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(c.OID())
		b.AddASN1OctetString(iv)
	})
	return b.BytesOrPanic()
}

func aesCBC(tb testing.TB, key, iv, padded []byte) []byte {
	tb.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, padded)
	return out
}

func TestDecryptPadding(t *testing.T) {
	t.Parallel()
	a, _ := testRecipients(t)
	key := bytes.Repeat([]byte{1}, 16)
	iv := bytes.Repeat([]byte{2}, 16)
	block := func(last ...byte) []byte {
		b := bytes.Repeat([]byte{'A'}, 16)
		copy(b[16-len(last):], last)
		return b
	}
	tests := []struct {
		name   string
		padded []byte // nil: use raw as the ciphertext
		raw    []byte
		want   string // expected plaintext; "" with ok false expects ErrDecrypt
		ok     bool
	}{
		{name: "one byte of padding", padded: block(1), want: strings.Repeat("A", 15), ok: true},
		{name: "full block of padding", padded: append(block(), bytes.Repeat([]byte{16}, 16)...),
			want: strings.Repeat("A", 16), ok: true},
		{name: "pad byte zero", padded: block(0)},
		{name: "pad byte larger than block", padded: block(17)},
		{name: "pad byte 255", padded: block(255)},
		{name: "inconsistent pad", padded: block(2, 3, 3)},
		{name: "empty ciphertext", raw: []byte{}},
		{name: "partial block", raw: []byte{1, 2, 3}},
		{name: "block and a half", raw: bytes.Repeat([]byte{1}, 24)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct := tc.raw
			if tc.padded != nil {
				ct = aesCBC(t, key, iv, tc.padded)
			}
			env := part{
				recipients: [][]byte{ktriFor(t, a.cert, false, key, nil, nil)},
				contentAlg: cbcAlg(t, AES128CBC, iv),
				ciphertext: ct,
			}.build(t)
			got, _, err := Decrypt(env, a.cert, a.key)
			if !tc.ok {
				if !errors.Is(err, ErrDecrypt) {
					t.Fatalf("Decrypt() = %q, %v; want ErrDecrypt", got, err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("Decrypt() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestUnpad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []byte
		bs   int
		want []byte
		ok   bool
	}{
		{nil, 8, nil, false},
		{[]byte{}, 8, nil, false},
		{[]byte{1, 2, 3, 4, 5, 6, 7, 1}, 8, []byte{1, 2, 3, 4, 5, 6, 7}, true},
		{bytes.Repeat([]byte{8}, 8), 8, []byte{}, true},
		{bytes.Repeat([]byte{9}, 8), 8, nil, false},
		{bytes.Repeat([]byte{0}, 8), 8, nil, false},
		{[]byte{1, 2, 3, 4, 5, 6, 7, 1}, 0, nil, false},
		{[]byte{1, 2, 3}, 8, nil, false},
	} {
		got, ok := unpad(tc.in, tc.bs)
		if ok != tc.ok || !bytes.Equal(got, tc.want) {
			t.Errorf("unpad(%x, %d) = %x, %v; want %x, %v", tc.in, tc.bs, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDecryptUnsupported(t *testing.T) {
	t.Parallel()
	a, _ := testRecipients(t)
	cek := bytes.Repeat([]byte{1}, 16)
	iv := bytes.Repeat([]byte{2}, 16)
	ct := aesCBC(t, cek, iv, block16(1))
	okRecipient := ktriFor(t, a.cert, false, cek, nil, nil)
	oaep := func(params []byte) []byte {
		var b cryptobyte.Builder
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidRSAESOAEP)
			b.AddBytes(params)
		})
		return b.BytesOrPanic()
	}
	ek, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &a.key.PublicKey, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := mustEncrypt(t, []byte("x"), a.cert, Params{ContentEncryption: AES128CBC, KeyTransport: RSAPKCS1v15})
	tests := []struct {
		name string
		env  []byte
	}{
		{"unknown content encryption (AES-128-OFB)", replaceOnce(t, env,
			oidBytes(t, AES128CBC.OID()), oidBytes(t, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 3}))},
		{"RC2-CBC", part{recipients: [][]byte{okRecipient}, ciphertext: ct,
			contentAlg: cbcAlgOID(asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 2}, iv)}.build(t)},
		{"unknown key transport (sha256WithRSAEncryption)", replaceOnce(t, env,
			oidBytes(t, oidRSAEncryption), oidBytes(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}))},
		{"OAEP with MD5", part{recipients: [][]byte{ktriFor(t, a.cert, false, cek,
			oaep(unhex(t, "3010 a00e 300c 0608 2a864886f70d0205 0500")), ek)},
			contentAlg: cbcAlg(t, AES128CBC, iv), ciphertext: ct}.build(t)},
		{"OAEP with MGF other than MGF1", part{recipients: [][]byte{ktriFor(t, a.cert, false, cek,
			oaep(unhex(t, "3011 a10f 300d 0609 2a864886f70d010109 3000")), ek)},
			contentAlg: cbcAlg(t, AES128CBC, iv), ciphertext: ct}.build(t)},
		{"OAEP with a label", part{recipients: [][]byte{ktriFor(t, a.cert, false, cek,
			oaep(unhex(t, "3012 a210 300e 0609 2a864886f70d010109 0401 61")), ek)},
			contentAlg: cbcAlg(t, AES128CBC, iv), ciphertext: ct}.build(t)},
		{"only a kari recipient", part{recipients: [][]byte{unhex(t, "a1 03 02 01 03")},
			contentAlg: cbcAlg(t, AES128CBC, iv), ciphertext: ct}.build(t)},
		{"CBC in AuthEnvelopedData", part{contentType: oidAuthEnvelopedData, recipients: [][]byte{okRecipient},
			contentAlg: cbcAlg(t, AES128CBC, iv), ciphertext: ct, mac: make([]byte, 16)}.build(t)},
		{"GCM with 8-byte nonce and 12-byte ICV", part{recipients: [][]byte{okRecipient}, ciphertext: ct,
			contentAlg: gcmAlg(t, AES128GCM, make([]byte, 8), 12)}.build(t)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := Decrypt(tc.env, a.cert, a.key); !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Errorf("Decrypt() error = %v, want ErrUnsupportedAlgorithm", err)
			}
		})
	}
}

func block16(last ...byte) []byte {
	b := bytes.Repeat([]byte{'A'}, 16)
	copy(b[16-len(last):], last)
	return b
}

func cbcAlgOID(oid asn1.ObjectIdentifier, iv []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1OctetString(iv)
	})
	return b.BytesOrPanic()
}

// gcmAlg returns an RFC 5084 AlgorithmIdentifier; icv < 0 omits aes-ICVlen.
func gcmAlg(tb testing.TB, c ContentEncryption, nonce []byte, icv int64) []byte {
	tb.Helper()
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(c.OID())
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(nonce)
			if icv >= 0 {
				b.AddASN1Int64(icv)
			}
		})
	})
	return b.BytesOrPanic()
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	out, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestDecryptGCMVariants(t *testing.T) {
	t.Parallel()
	a, _ := testRecipients(t)
	cek := bytes.Repeat([]byte{1}, 16)
	block, err := aes.NewCipher(cek)
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{3}, 12)
	attrs := unhex(t, "300f 0609 2a864886f70d010903 3102 0500") // one Attribute
	aad := append([]byte{0x31, byte(len(attrs))}, attrs...)
	seal := func(icv int, aad []byte) (ct, tag []byte) {
		aead, err := cipher.NewGCMWithTagSize(block, icv)
		if err != nil {
			t.Fatal(err)
		}
		out := aead.Seal(nil, nonce, []byte("gcm content"), aad)
		return out[:len(out)-icv], out[len(out)-icv:]
	}
	rcpt := [][]byte{ktriFor(t, a.cert, false, cek, nil, nil)}
	ct12, tag12 := seal(12, nil)
	ct16, tag16 := seal(16, aad)
	tests := []struct {
		name string
		env  []byte
		ok   bool
	}{
		{"EnvelopedData, RFC 5084 parameters, default ICV", part{recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nonce, -1), ciphertext: append(ct12, tag12...)}.build(t), true},
		{"AuthEnvelopedData, default ICV", part{contentType: oidAuthEnvelopedData, recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nonce, -1), ciphertext: ct12, mac: tag12}.build(t), true},
		{"AuthEnvelopedData with authAttrs", part{contentType: oidAuthEnvelopedData, recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nonce, 16), ciphertext: ct16, mac: tag16, authAttrs: attrs}.build(t), true},
		{"AuthEnvelopedData, chunked", part{contentType: oidAuthEnvelopedData, recipients: rcpt, chunked: true,
			contentAlg: gcmAlg(t, AES128GCM, nonce, 16), ciphertext: ct16, mac: tag16, authAttrs: attrs}.build(t), true},
		{"authAttrs tampered", part{contentType: oidAuthEnvelopedData, recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nonce, 16), ciphertext: ct16, mac: tag16,
			authAttrs: replaceOnce(t, attrs, []byte{0x05, 0x00}, []byte{0x04, 0x00})}.build(t), false},
		{"mac tampered", part{contentType: oidAuthEnvelopedData, recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nonce, -1), ciphertext: ct12, mac: append([]byte{tag12[0] ^ 1}, tag12[1:]...)}.build(t), false},
		{"mac missing from AuthEnvelopedData", part{contentType: oidAuthEnvelopedData, recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nonce, -1), ciphertext: ct12}.build(t), false},
		{"mac length differs from ICV", part{contentType: oidAuthEnvelopedData, recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nonce, 16), ciphertext: ct12, mac: tag12}.build(t), false},
		{"ICV 17", part{recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nonce, 17), ciphertext: append(ct12, tag12...)}.build(t), false},
		{"empty nonce", part{recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nil, 12), ciphertext: append(ct12, tag12...)}.build(t), false},
		{"ciphertext shorter than tag", part{recipients: rcpt,
			contentAlg: gcmAlg(t, AES128GCM, nonce, 16), ciphertext: []byte{1, 2, 3}}.build(t), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for form, in := range map[string][]byte{"DER": tc.env, "BER": mustIndefinite(t, tc.env)} {
				got, _, err := Decrypt(in, a.cert, a.key)
				if tc.ok && (err != nil || string(got) != "gcm content") {
					t.Errorf("Decrypt(%s) = %q, %v; want %q", form, got, err, "gcm content")
				}
				if !tc.ok && !errors.Is(err, ErrDecrypt) {
					t.Errorf("Decrypt(%s) = %q, %v; want ErrDecrypt", form, got, err)
				}
			}
		})
	}
}

func TestRecipientSelection(t *testing.T) {
	t.Parallel()
	a, b := testRecipients(t)
	cek := bytes.Repeat([]byte{7}, 16)
	iv := bytes.Repeat([]byte{2}, 16)
	ct := aesCBC(t, cek, iv, block16(1))
	alg := cbcAlg(t, AES128CBC, iv)
	want := strings.Repeat("A", 15)
	// A recipient for b that is not a ktri, and another one that is.
	forB := ktriFor(t, b.cert, false, cek, nil, nil)
	other := unhex(t, "a1 03 02 01 03")
	tests := []struct {
		name       string
		recipients [][]byte
		cert       *x509.Certificate
		ok         bool
	}{
		{"issuer and serial, second of two", [][]byte{forB, ktriFor(t, a.cert, false, cek, nil, nil)}, a.cert, true},
		{"issuer and serial, first of two", [][]byte{ktriFor(t, a.cert, false, cek, nil, nil), forB}, a.cert, true},
		{"subject key identifier", [][]byte{forB, ktriFor(t, a.cert, true, cek, nil, nil)}, a.cert, true},
		{"only recipient names another certificate", [][]byte{other, ktriFor(t, a.cert, false, cek, nil, nil)}, b.cert, true},
		{"nil certificate, one recipient", [][]byte{ktriFor(t, a.cert, true, cek, nil, nil)}, nil, true},
		{"nil certificate, two recipients", [][]byte{forB, ktriFor(t, a.cert, false, cek, nil, nil)}, nil, false},
		{"no recipient matches", [][]byte{forB, forB}, a.cert, false},
		{"no recipients", nil, a.cert, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := part{recipients: tc.recipients, contentAlg: alg, ciphertext: ct}.build(t)
			got, _, err := Decrypt(env, tc.cert, a.key)
			if tc.ok && (err != nil || string(got) != want) {
				t.Errorf("Decrypt() = %q, %v; want %q", got, err, want)
			}
			if !tc.ok && !errors.Is(err, ErrDecrypt) {
				t.Errorf("Decrypt() = %q, %v; want ErrDecrypt", got, err)
			}
		})
	}
}

func TestDecryptMalformed(t *testing.T) {
	t.Parallel()
	a, _ := testRecipients(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Params{
		{ContentEncryption: AES128CBC, KeyTransport: RSAPKCS1v15},
		{ContentEncryption: AES256GCM, KeyTransport: RSAOAEP, OAEPHash: crypto.SHA256, Authenticated: true},
		{ContentEncryption: AES128GCM, KeyTransport: RSAOAEP, OAEPHash: crypto.SHA384},
	} {
		env := mustEncrypt(t, []byte("hello"), a.cert, p)
		indef := mustIndefinite(t, env)
		for _, in := range [][]byte{env, indef} {
			for n := range len(in) {
				if _, _, err := Decrypt(in[:n], a.cert, a.key); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("Decrypt(%v, first %d of %d bytes) error = %v, want ErrDecrypt", p, n, len(in), err)
				}
			}
			if _, _, err := Decrypt(append(in[:len(in):len(in)], 0), a.cert, a.key); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Decrypt(%v + trailing byte) error = %v, want ErrDecrypt", p, err)
			}
			// Flip every byte in turn: errors are typed, and nothing panics.
			for i := range in {
				c := bytes.Clone(in)
				c[i] ^= 0xff
				_, _, err := Decrypt(c, a.cert, a.key)
				if err != nil && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnsupportedAlgorithm) {
					t.Errorf("Decrypt(%v with byte %d flipped) error %v is untyped", p, i, err)
				}
			}
		}
		if _, _, err := Decrypt(env, a.cert, ecDecrypter{ec}); err == nil || !strings.Contains(err.Error(), "RSA") {
			t.Errorf("Decrypt(ECDSA key) error = %v, want one naming RSA", err)
		}
	}
	signedData := unhex(t, "300f 0609 2a864886f70d010702 a002 3000")
	for name, in := range map[string][]byte{
		"nil":                nil,
		"garbage":            []byte("this is not an envelope at all"),
		"empty sequence":     {0x30, 0x00},
		"SignedData":         signedData,
		"integer":            {0x02, 0x01, 0x00},
		"bare empty version": unhex(t, "3003 020100"),
	} {
		if _, _, err := Decrypt(in, a.cert, a.key); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Decrypt(%s) error = %v, want ErrDecrypt", name, err)
		}
	}
	if _, _, err := Decrypt(signedData, a.cert, nil); err == nil {
		t.Errorf("Decrypt(nil key) succeeded")
	}
}

// ecDecrypter is a crypto.Decrypter with a non-RSA key, as a misconfigured HSM
// might offer.
type ecDecrypter struct{ *ecdsa.PrivateKey }

func (ecDecrypter) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, errors.New("not an RSA key")
}

func TestDecryptBareEnvelopedData(t *testing.T) {
	t.Parallel()
	a, _ := testRecipients(t)
	for _, p := range []Params{
		{ContentEncryption: AES192CBC, KeyTransport: RSAPKCS1v15},
		{ContentEncryption: AES192GCM, KeyTransport: RSAPKCS1v15, Authenticated: true},
	} {
		env := mustEncrypt(t, []byte("bare"), a.cert, p)
		s := cryptobyte.String(env)
		var ci, body cryptobyte.String
		var explicit cryptobyte.String
		if !s.ReadASN1(&ci, casn1.SEQUENCE) || !ci.SkipASN1(casn1.OBJECT_IDENTIFIER) ||
			!ci.ReadASN1(&explicit, tagExplicit0) || !explicit.ReadASN1Element(&body, casn1.SEQUENCE) {
			t.Fatal("cannot unwrap ContentInfo")
		}
		got, gp, err := Decrypt(body, a.cert, a.key)
		if err != nil || string(got) != "bare" || gp != p {
			t.Errorf("Decrypt(bare %v) = %q, %v, %v", p, got, gp, err)
		}
	}
}

func FuzzDecrypt(f *testing.F) {
	a, _ := testRecipients(f)
	for _, p := range []Params{
		{ContentEncryption: DESCBC, KeyTransport: RSAPKCS1v15},
		{ContentEncryption: AES128CBC, KeyTransport: RSAOAEP, OAEPHash: crypto.SHA256},
		{ContentEncryption: AES256GCM, KeyTransport: RSAOAEP, OAEPHash: crypto.SHA1, Authenticated: true},
		{ContentEncryption: AES128GCM, KeyTransport: RSAPKCS1v15},
	} {
		env := mustEncrypt(f, []byte("fuzz seed"), a.cert, p)
		f.Add(env)
		f.Add(mustIndefinite(f, env))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, p, err := Decrypt(in, a.cert, a.key)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Fatalf("Decrypt(%x) error %v wraps neither ErrDecrypt nor ErrUnsupportedAlgorithm", in, err)
			}
			return
		}
		_ = p.String()
		if err := p.validate(); err != nil {
			t.Fatalf("Decrypt(%x) returned params %#v that Encrypt refuses: %v", in, p, err)
		}
	})
}

func TestNames(t *testing.T) {
	t.Parallel()
	a, b := testRecipients(t)
	env := mustEncrypt(t, []byte("secret content"), a.cert, allParams()[0])
	tests := []struct {
		name     string
		envelope []byte
		cert     *x509.Certificate
		want     bool
	}{
		{name: "the recipient", envelope: env, cert: a.cert, want: true},
		{name: "another certificate", envelope: env, cert: b.cert},
		{name: "nil certificate", envelope: env},
		{name: "not an envelope", envelope: []byte{0x30, 0x03, 0x02, 0x01, 0x01}, cert: a.cert},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Names(tc.envelope, tc.cert); got != tc.want {
				t.Errorf("Names(%s) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}
