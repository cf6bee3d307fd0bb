package cms

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des" //nolint:gosec // DES and 3DES envelopes are what legacy SCEP clients send (scepclient is DES-only, PROTOCOLS.md §1.6); an integration's minCipher can refuse them
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var (
	// ErrUnsupportedAlgorithm means the envelope uses a content-encryption or
	// key-transport algorithm (or parameters) this package does not implement. SCEP
	// answers it with failInfo badAlg.
	ErrUnsupportedAlgorithm = errors.New("cms: unsupported algorithm")

	// ErrDecrypt means the envelope is malformed, names no recipient we hold, or does
	// not decrypt (wrong key, bad padding, failed authentication). SCEP answers it
	// with failInfo badMessageCheck.
	ErrDecrypt = errors.New("cms: cannot decrypt")
)

func errDecrypt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDecrypt}, args...)...)
}

func errUnsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupportedAlgorithm}, args...)...)
}

// ContentEncryption is a content-encryption algorithm. The zero value is invalid.
type ContentEncryption int

// Content-encryption algorithms, in no particular order (see Strength).
const (
	DESCBC     ContentEncryption = iota + 1 // DES-CBC, 1.3.14.3.2.7
	DESEDE3CBC                              // DES-EDE3-CBC, 1.2.840.113549.3.7
	AES128CBC                               // 2.16.840.1.101.3.4.1.2
	AES192CBC                               // 2.16.840.1.101.3.4.1.22
	AES256CBC                               // 2.16.840.1.101.3.4.1.42
	AES128GCM                               // 2.16.840.1.101.3.4.1.6
	AES192GCM                               // 2.16.840.1.101.3.4.1.26
	AES256GCM                               // 2.16.840.1.101.3.4.1.46
)

// ContentEncryptions lists every supported content-encryption algorithm.
func ContentEncryptions() []ContentEncryption {
	return []ContentEncryption{DESCBC, DESEDE3CBC, AES128CBC, AES192CBC, AES256CBC, AES128GCM, AES192GCM, AES256GCM}
}

type cipherInfo struct {
	name     string
	oid      asn1.ObjectIdentifier
	keySize  int
	gcm      bool
	strength Strength
}

func (c ContentEncryption) info() (cipherInfo, bool) {
	aes := func(n int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, n} }
	switch c {
	case DESCBC:
		return cipherInfo{"des-cbc", asn1.ObjectIdentifier{1, 3, 14, 3, 2, 7}, 8, false, StrengthDES}, true
	case DESEDE3CBC:
		return cipherInfo{"3des-cbc", asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}, 24, false, Strength3DES}, true
	case AES128CBC:
		return cipherInfo{"aes128-cbc", aes(2), 16, false, StrengthAES}, true
	case AES192CBC:
		return cipherInfo{"aes192-cbc", aes(22), 24, false, StrengthAES}, true
	case AES256CBC:
		return cipherInfo{"aes256-cbc", aes(42), 32, false, StrengthAES}, true
	case AES128GCM:
		return cipherInfo{"aes128-gcm", aes(6), 16, true, StrengthAES}, true
	case AES192GCM:
		return cipherInfo{"aes192-gcm", aes(26), 24, true, StrengthAES}, true
	case AES256GCM:
		return cipherInfo{"aes256-gcm", aes(46), 32, true, StrengthAES}, true
	}
	return cipherInfo{}, false
}

// contentEncryptionByOID returns the algorithm an OID names, or 0.
func contentEncryptionByOID(oid asn1.ObjectIdentifier) ContentEncryption {
	for _, c := range ContentEncryptions() {
		if info, _ := c.info(); info.oid.Equal(oid) {
			return c
		}
	}
	return 0
}

// String returns a short lower-case name such as "aes256-cbc".
func (c ContentEncryption) String() string {
	if info, ok := c.info(); ok {
		return info.name
	}
	return "unknown-cipher(" + strconv.Itoa(int(c)) + ")"
}

// OID returns the algorithm's object identifier, or nil for an invalid value.
func (c ContentEncryption) OID() asn1.ObjectIdentifier {
	info, _ := c.info()
	return info.oid
}

// Strength returns the class of the algorithm for a minimum-cipher policy.
func (c ContentEncryption) Strength() Strength {
	info, _ := c.info()
	return info.strength
}

func (c ContentEncryption) blockSize() int {
	if c == DESCBC || c == DESEDE3CBC {
		return des.BlockSize
	}
	return aes.BlockSize
}

func (c ContentEncryption) newBlock(key []byte) (cipher.Block, error) {
	switch c {
	case DESCBC:
		return des.NewCipher(key) //nolint:gosec // legacy SCEP clients, see the import
	case DESEDE3CBC:
		return des.NewTripleDESCipher(key) //nolint:gosec // legacy SCEP clients, see the import
	default:
		return aes.NewCipher(key)
	}
}

// Strength orders content-encryption algorithms for a minimum-cipher policy
// (PROTOCOLS.md §1.6): StrengthDES < Strength3DES < StrengthAES. The zero value
// ranks below all of them and belongs to no algorithm.
type Strength int

// Strengths, weakest first.
const (
	StrengthDES Strength = iota + 1
	Strength3DES
	StrengthAES
)

// String returns "des", "3des" or "aes", the spelling ParseStrength accepts.
func (s Strength) String() string {
	switch s {
	case StrengthDES:
		return "des"
	case Strength3DES:
		return "3des"
	case StrengthAES:
		return "aes"
	}
	return "unknown-strength(" + strconv.Itoa(int(s)) + ")"
}

// ParseStrength parses "des", "3des" or "aes" (any case), as a configuration's
// minimum cipher is written.
func ParseStrength(s string) (Strength, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "des":
		return StrengthDES, nil
	case "3des":
		return Strength3DES, nil
	case "aes":
		return StrengthAES, nil
	}
	return 0, fmt.Errorf("cms: unknown cipher strength %q, want des, 3des or aes", s)
}

// KeyTransport is an RSA key-transport algorithm. The zero value is invalid.
type KeyTransport int

// Key-transport algorithms.
const (
	RSAPKCS1v15 KeyTransport = iota + 1 // rsaEncryption, 1.2.840.113549.1.1.1
	RSAOAEP                             // id-RSAES-OAEP, 1.2.840.113549.1.1.7 (RFC 4055)
)

// String returns "rsa-pkcs1v15" or "rsa-oaep".
func (k KeyTransport) String() string {
	switch k {
	case RSAPKCS1v15:
		return "rsa-pkcs1v15"
	case RSAOAEP:
		return "rsa-oaep"
	}
	return "unknown-key-transport(" + strconv.Itoa(int(k)) + ")"
}

// Params are the algorithms of one envelope: what Decrypt found, and what Encrypt
// uses. Decrypt returns them in canonical form, so a reply built from them mirrors
// the request, and two Params compare with ==.
type Params struct {
	ContentEncryption ContentEncryption
	KeyTransport      KeyTransport

	// OAEPHash is the RSAES-OAEP hash (SHA-1, SHA-224, SHA-256, SHA-384 or
	// SHA-512). Zero means SHA-1, the RFC 4055 default; Decrypt sets it explicitly.
	// It must be zero for RSAPKCS1v15.
	OAEPHash crypto.Hash
	// OAEPMGFHash is the hash of the MGF1 mask generation function when it differs
	// from OAEPHash. Zero means the same as OAEPHash; Decrypt leaves it zero then.
	OAEPMGFHash crypto.Hash

	// Authenticated selects AuthEnvelopedData (RFC 5083), the standard container
	// for AES-GCM that OpenSSL writes, instead of EnvelopedData. It is valid only
	// with a GCM cipher. GCM inside EnvelopedData is what smallstep/pkcs7 writes and
	// reads; Encrypt then uses smallstep's parameter encoding so such a peer can
	// read the reply.
	Authenticated bool
}

// String returns a short name such as "aes256-cbc/rsa-oaep-sha256",
// "des-cbc/rsa-pkcs1v15" or "aes128-gcm/rsa-pkcs1v15/authenveloped". It never
// panics, whatever the field values.
func (p Params) String() string {
	var b strings.Builder
	b.WriteString(p.ContentEncryption.String())
	b.WriteByte('/')
	b.WriteString(p.KeyTransport.String())
	if p.KeyTransport == RSAOAEP {
		h := p.oaepHash()
		b.WriteString("-" + hashName(h))
		if m := p.mgfHash(); m != h {
			b.WriteString("-mgf1-" + hashName(m))
		}
	}
	if p.Authenticated {
		b.WriteString("/authenveloped")
	}
	return b.String()
}

// Strength is the strength of the content encryption, for a minimum-cipher policy:
// refuse a request when p.Strength() < min.
func (p Params) Strength() Strength { return p.ContentEncryption.Strength() }

func (p Params) oaepHash() crypto.Hash {
	if p.OAEPHash == 0 {
		return crypto.SHA1
	}
	return p.OAEPHash
}

func (p Params) mgfHash() crypto.Hash {
	if p.OAEPMGFHash == 0 {
		return p.oaepHash()
	}
	return p.OAEPMGFHash
}

// validate reports why Encrypt cannot use p; errors wrap ErrUnsupportedAlgorithm.
func (p Params) validate() error {
	info, ok := p.ContentEncryption.info()
	if !ok {
		return errUnsupported("content encryption %v", p.ContentEncryption)
	}
	if p.Authenticated && !info.gcm {
		return errUnsupported("AuthEnvelopedData needs an authenticated cipher, not %v", p.ContentEncryption)
	}
	switch p.KeyTransport {
	case RSAPKCS1v15:
		if p.OAEPHash != 0 || p.OAEPMGFHash != 0 {
			return errUnsupported("OAEP hashes set for %v key transport", p.KeyTransport)
		}
	case RSAOAEP:
		if hashOID(p.oaepHash()) == nil {
			return errUnsupported("OAEP hash %v", p.oaepHash())
		}
		if hashOID(p.mgfHash()) == nil {
			return errUnsupported("OAEP MGF1 hash %v", p.mgfHash())
		}
	default:
		return errUnsupported("key transport %v", p.KeyTransport)
	}
	return nil
}

var (
	oidData              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEnvelopedData     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidAuthEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 23}
	oidRSAEncryption     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSAESOAEP         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	oidMGF1              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidPSpecified        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 9}
)

// The OAEP hashes of RFC 4055, Section 2.1.
func hashOID(h crypto.Hash) asn1.ObjectIdentifier {
	switch h {
	case crypto.SHA1:
		return asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	case crypto.SHA224:
		return asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	case crypto.SHA256:
		return asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	case crypto.SHA384:
		return asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	case crypto.SHA512:
		return asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	}
	return nil
}

func hashByOID(oid asn1.ObjectIdentifier) crypto.Hash {
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		if hashOID(h).Equal(oid) {
			return h
		}
	}
	return 0
}

func hashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA1:
		return "sha1"
	case crypto.SHA224:
		return "sha224"
	case crypto.SHA256:
		return "sha256"
	case crypto.SHA384:
		return "sha384"
	case crypto.SHA512:
		return "sha512"
	}
	return "unknown-hash(" + strconv.Itoa(int(h)) + ")"
}
