package cms

import (
	"bytes"
	"crypto"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1"   //nolint:gosec // SHA-1 is RSAES-OAEP's default hash (RFC 4055), which SCEP clients send
	_ "crypto/sha256" // OAEP hashes SHA-224, SHA-256
	_ "crypto/sha512" // OAEP hashes SHA-384, SHA-512
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scepca/scepca/internal/ber"
)

// Tags used below, beyond the universal ones cryptobyte/asn1 names.
var (
	tagExplicit0 = casn1.Tag(0).Constructed().ContextSpecific()
	tagExplicit1 = casn1.Tag(1).Constructed().ContextSpecific()
	tagExplicit2 = casn1.Tag(2).Constructed().ContextSpecific()
	tagImplicit0 = casn1.Tag(0).ContextSpecific()
	tagImplicit4 = casn1.Tag(4).ContextSpecific()
	// tagPrimitiveSequence is the universal SEQUENCE tag without the constructed bit,
	// which smallstep/pkcs7 v0.2.3 writes around its GCM parameters.
	tagPrimitiveSequence = casn1.Tag(16)
)

// envelope is the parsed form of an EnvelopedData or AuthEnvelopedData.
type envelope struct {
	auth       bool
	recipients []ktri
	others     int // recipientInfos other than ktri (kari, kekri, pwri, ori)
	contentAlg algorithmIdentifier
	ciphertext []byte
	aad        []byte // AuthEnvelopedData: authAttrs as a DER SET OF
	mac        []byte // AuthEnvelopedData: the GCM tag
}

// ktri is a KeyTransRecipientInfo (RFC 5652, Section 6.2.1).
type ktri struct {
	issuer       []byte   // DER Name, for an issuerAndSerialNumber rid
	serial       *big.Int // for an issuerAndSerialNumber rid
	ski          []byte   // for a subjectKeyIdentifier rid
	alg          algorithmIdentifier
	encryptedKey []byte
}

type algorithmIdentifier struct {
	oid       asn1.ObjectIdentifier
	params    cryptobyte.String // the whole parameters element, or empty when absent
	paramsTag casn1.Tag
}

func readAlgorithmIdentifier(s *cryptobyte.String, a *algorithmIdentifier) bool {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&a.oid) {
		return false
	}
	if !seq.Empty() && !seq.ReadAnyASN1Element(&a.params, &a.paramsTag) {
		return false
	}
	return seq.Empty()
}

// absentOrNull reports whether algorithm parameters are absent or NULL.
func (a algorithmIdentifier) absentOrNull() bool {
	return len(a.params) == 0 || (a.paramsTag == casn1.NULL && len(a.params) == 2)
}

// Decrypt decrypts a CMS EnvelopedData (or AuthEnvelopedData), given as DER or BER,
// bare or wrapped in a ContentInfo, for the recipient cert with private key key. It
// returns the content and the algorithms used, so a reply can mirror them.
//
// The recipient is the KeyTransRecipientInfo naming cert by issuerAndSerialNumber
// or subjectKeyIdentifier; failing that, the only one there is (clients do not
// always name the CA certificate we expect). cert may be nil to rely on that.
//
// Errors wrap ErrUnsupportedAlgorithm for algorithms and parameters this package
// does not implement, and ErrDecrypt for malformed input, a missing recipient and
// failed decryption. PKCS #1 v1.5 key transport uses implicit rejection: bad RSA
// padding yields a random content key and so, almost always, an ErrDecrypt from
// the content decryption; in about one case in 256 for CBC ciphers it yields
// garbage plaintext and no error, which the caller's parse of the content catches.
// A nil or non-RSA key is the caller's mistake and wraps neither sentinel. See RFC
// 5652, Section 6, and RFC 3218.
func Decrypt(envelope []byte, cert *x509.Certificate, key crypto.Decrypter) ([]byte, Params, error) {
	if key == nil {
		return nil, Params{}, errors.New("cms: no decryption key")
	}
	env, err := parseEnvelope(envelope)
	if err != nil {
		return nil, Params{}, err
	}
	c, iv, icvLen, err := parseContentAlgorithm(env.contentAlg, env.auth)
	if err != nil {
		return nil, Params{}, err
	}
	r, err := env.recipient(cert)
	if err != nil {
		return nil, Params{}, err
	}
	p := Params{ContentEncryption: c, Authenticated: env.auth}
	mgfDefaulted, err := parseKeyTransport(r.alg, &p)
	if err != nil {
		return nil, Params{}, err
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return nil, Params{}, fmt.Errorf("cms: decryption key is %T; key transport %v needs RSA", key.Public(), p.KeyTransport)
	}
	info, _ := c.info()
	var opts crypto.DecrypterOpts
	switch p.KeyTransport {
	case RSAPKCS1v15:
		// Implicit rejection: on bad padding or length, a random key of the expected
		// size comes back instead of an error, in constant time (no padding oracle).
		//nolint:staticcheck // SA1019: SCEP clients (scepclient, certmonger) use rsaEncryption, PROTOCOLS.md §1.6.
		opts = &rsa.PKCS1v15DecryptOptions{SessionKeyLen: info.keySize}
	case RSAOAEP:
		opts = &rsa.OAEPOptions{Hash: p.oaepHash(), MGFHash: p.mgfHash()}
	}
	cek, err := key.Decrypt(rand.Reader, r.encryptedKey, opts)
	if err != nil && mgfDefaulted {
		// smallstep/pkcs7 v0.2.3 (encrypt.go, getParametersForKeyEncryptionAlgorithm
		// and encryptKey) writes hashFunc without maskGenFunc, which RFC 4055 reads as
		// MGF1 with SHA-1, but masks with MGF1 over hashFunc. Retry that reading; a
		// reply then states MGF1 over hashFunc explicitly, which smallstep reads.
		// OAEP decryption fails uniformly and in constant time, so the retry reveals
		// nothing but success or failure.
		if cek, err = key.Decrypt(rand.Reader, r.encryptedKey, &rsa.OAEPOptions{Hash: p.oaepHash()}); err == nil {
			p.OAEPMGFHash = 0
		}
	}
	if err != nil {
		return nil, Params{}, errDecrypt("key transport %v: %v", p.String(), err)
	}
	if len(cek) != info.keySize {
		return nil, Params{}, errDecrypt("content key is %d bytes, %v needs %d", len(cek), c, info.keySize)
	}
	plaintext, err := decryptContent(c, cek, iv, icvLen, env)
	if err != nil {
		return nil, Params{}, err
	}
	return plaintext, p, nil
}

// parseEnvelope normalises BER and parses the structure (RFC 5652, Sections 3 and
// 6.1; RFC 5083, Section 2.1).
func parseEnvelope(b []byte) (*envelope, error) {
	der, err := ber.ToDER(b)
	if err != nil {
		return nil, errDecrypt("malformed envelope: %v", err)
	}
	malformed := func(what string) error { return errDecrypt("malformed envelope: %s", what) }

	in := cryptobyte.String(der)
	var body cryptobyte.String
	if !in.ReadASN1(&body, casn1.SEQUENCE) || !in.Empty() {
		return nil, malformed("not a SEQUENCE")
	}
	known, auth := false, false
	if body.PeekASN1Tag(casn1.OBJECT_IDENTIFIER) {
		// ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }
		var ct asn1.ObjectIdentifier
		var explicit cryptobyte.String
		if !body.ReadASN1ObjectIdentifier(&ct) || !body.ReadASN1(&explicit, tagExplicit0) || !body.Empty() {
			return nil, malformed("ContentInfo")
		}
		switch {
		case ct.Equal(oidEnvelopedData):
		case ct.Equal(oidAuthEnvelopedData):
			auth = true
		default:
			return nil, errDecrypt("content type %v is not enveloped data", ct)
		}
		known = true
		if !explicit.ReadASN1(&body, casn1.SEQUENCE) || !explicit.Empty() {
			return nil, malformed("ContentInfo content")
		}
	}

	env := &envelope{}
	var version int64
	if !body.ReadASN1Integer(&version) {
		return nil, malformed("version")
	}
	if body.PeekASN1Tag(tagExplicit0) && !body.SkipASN1(tagExplicit0) { // originatorInfo
		return nil, malformed("originatorInfo")
	}
	var set cryptobyte.String
	if !body.ReadASN1(&set, casn1.SET) {
		return nil, malformed("recipientInfos")
	}
	for !set.Empty() {
		var ri cryptobyte.String
		var tag casn1.Tag
		if !set.ReadAnyASN1(&ri, &tag) {
			return nil, malformed("recipientInfo")
		}
		if tag != casn1.SEQUENCE { // [1] kari, [2] kekri, [3] pwri, [4] ori
			env.others++
			continue
		}
		r, ok := parseKTRI(ri)
		if !ok {
			return nil, malformed("KeyTransRecipientInfo")
		}
		env.recipients = append(env.recipients, r)
	}

	// EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm,
	//   encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
	var eci cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !body.ReadASN1(&eci, casn1.SEQUENCE) || !eci.ReadASN1ObjectIdentifier(&ct) ||
		!readAlgorithmIdentifier(&eci, &env.contentAlg) {
		return nil, malformed("EncryptedContentInfo")
	}
	switch {
	case eci.PeekASN1Tag(tagImplicit0):
		var c cryptobyte.String
		if !eci.ReadASN1(&c, tagImplicit0) {
			return nil, malformed("encryptedContent")
		}
		env.ciphertext = c
	case eci.PeekASN1Tag(tagExplicit0):
		// BER constructed form: a series of OCTET STRING chunks (ber.ToDER has
		// already flattened chunks that were themselves constructed).
		var chunks cryptobyte.String
		if !eci.ReadASN1(&chunks, tagExplicit0) {
			return nil, malformed("encryptedContent")
		}
		env.ciphertext = []byte{}
		for !chunks.Empty() {
			var c cryptobyte.String
			if !chunks.ReadASN1(&c, casn1.OCTET_STRING) {
				return nil, malformed("encryptedContent chunk")
			}
			env.ciphertext = append(env.ciphertext, c...)
		}
	case eci.Empty():
		return nil, errDecrypt("detached encrypted content is not supported")
	}
	if !eci.Empty() {
		return nil, malformed("EncryptedContentInfo trailing data")
	}

	// EnvelopedData ends with [1] unprotectedAttrs OPTIONAL; AuthEnvelopedData with
	// [1] authAttrs OPTIONAL, mac OCTET STRING, [2] unauthAttrs OPTIONAL.
	var attrs cryptobyte.String
	if body.PeekASN1Tag(tagExplicit1) && !body.ReadASN1Element(&attrs, tagExplicit1) {
		return nil, malformed("attributes")
	}
	hasMAC := false
	if body.PeekASN1Tag(casn1.OCTET_STRING) {
		var mac cryptobyte.String
		if !body.ReadASN1(&mac, casn1.OCTET_STRING) {
			return nil, malformed("mac")
		}
		env.mac, hasMAC = mac, true
	}
	if hasMAC && body.PeekASN1Tag(tagExplicit2) && !body.SkipASN1(tagExplicit2) {
		return nil, malformed("unauthAttrs")
	}
	if !body.Empty() {
		return nil, malformed("trailing data")
	}
	if known && auth != hasMAC {
		return nil, malformed("mac presence does not match the content type")
	}
	env.auth = hasMAC
	if env.auth && len(attrs) > 0 {
		// The MAC covers the DER SET OF, not the IMPLICIT [1] tag (RFC 5083, 2.2).
		env.aad = append([]byte{byte(casn1.SET)}, attrs[1:]...)
	}
	return env, nil
}

func parseKTRI(s cryptobyte.String) (ktri, bool) {
	var r ktri
	var version int64
	if !s.ReadASN1Integer(&version) {
		return r, false
	}
	switch {
	case s.PeekASN1Tag(casn1.SEQUENCE):
		// IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER }
		var ias, issuer, serial cryptobyte.String
		if !s.ReadASN1(&ias, casn1.SEQUENCE) || !ias.ReadASN1Element(&issuer, casn1.SEQUENCE) ||
			!ias.ReadASN1(&serial, casn1.INTEGER) || !ias.Empty() {
			return r, false
		}
		r.issuer, r.serial = issuer, parseInteger(serial)
	case s.PeekASN1Tag(tagImplicit0):
		var ski cryptobyte.String
		if !s.ReadASN1(&ski, tagImplicit0) {
			return r, false
		}
		r.ski = ski
	default:
		return r, false
	}
	var ek cryptobyte.String
	if !readAlgorithmIdentifier(&s, &r.alg) || !s.ReadASN1(&ek, casn1.OCTET_STRING) || !s.Empty() {
		return r, false
	}
	r.encryptedKey = ek
	return r, true
}

// parseInteger decodes a two's complement INTEGER leniently (a serial number with
// a superfluous leading octet still matches).
func parseInteger(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return n
}

// Names reports whether envelope has a KeyTransRecipientInfo naming cert by
// issuerAndSerialNumber or subjectKeyIdentifier. A server holding several
// recipient keys (a CA during rotation) picks the one the client encrypted
// to with it; Decrypt's fallback to a lone recipient is not a match here.
func Names(envelope []byte, cert *x509.Certificate) bool {
	if cert == nil {
		return false
	}
	env, err := parseEnvelope(envelope)
	if err != nil {
		return false
	}
	for i := range env.recipients {
		if env.recipients[i].names(cert) {
			return true
		}
	}
	return false
}

// names reports whether r identifies cert.
func (r *ktri) names(cert *x509.Certificate) bool {
	if r.ski != nil {
		return len(cert.SubjectKeyId) > 0 && bytes.Equal(r.ski, cert.SubjectKeyId)
	}
	return cert.SerialNumber != nil && bytes.Equal(r.issuer, cert.RawIssuer) && r.serial.Cmp(cert.SerialNumber) == 0
}

// recipient picks the KeyTransRecipientInfo for cert (see Decrypt).
func (e *envelope) recipient(cert *x509.Certificate) (*ktri, error) {
	if cert != nil {
		for i := range e.recipients {
			if r := &e.recipients[i]; r.names(cert) {
				return r, nil
			}
		}
	}
	switch {
	case len(e.recipients) == 1:
		return &e.recipients[0], nil
	case len(e.recipients) > 1:
		return nil, errDecrypt("none of %d recipients names the certificate", len(e.recipients))
	case e.others > 0:
		return nil, errUnsupported("no key transport recipient among %d recipientInfos (only ktri is implemented)", e.others)
	}
	return nil, errDecrypt("no recipients")
}

// parseContentAlgorithm resolves the content-encryption algorithm and its
// parameters: the CBC IV, or the GCM nonce and ICV length.
func parseContentAlgorithm(a algorithmIdentifier, auth bool) (c ContentEncryption, iv []byte, icvLen int, err error) {
	c = contentEncryptionByOID(a.oid)
	if c == 0 {
		return 0, nil, 0, errUnsupported("content encryption %v", a.oid)
	}
	info, _ := c.info()
	if auth && !info.gcm {
		return 0, nil, 0, errUnsupported("%v in AuthEnvelopedData", c)
	}
	if !info.gcm {
		// CBC parameters are the IV as an OCTET STRING (RFC 3370 §5.2, RFC 3565 §4.1).
		p := a.params
		if !p.ReadASN1((*cryptobyte.String)(&iv), casn1.OCTET_STRING) || !p.Empty() || len(iv) != c.blockSize() {
			return 0, nil, 0, errDecrypt("malformed %v parameters", c)
		}
		return c, iv, 0, nil
	}
	iv, icvLen, err = parseGCMParameters(a)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("%v parameters: %w", c, err)
	}
	return c, iv, icvLen, nil
}

// parseGCMParameters reads GCMParameters (RFC 5084, Section 3.2):
//
//	GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING, aes-ICVlen INTEGER DEFAULT 12 }
//
// It also reads the form smallstep/pkcs7 v0.2.3 writes: the same SEQUENCE, but with
// the nonce as [4] IMPLICIT OCTET STRING, wrapped in a primitive-tagged SEQUENCE.
func parseGCMParameters(a algorithmIdentifier) (nonce []byte, icvLen int, err error) {
	p := a.params
	var seq cryptobyte.String
	switch a.paramsTag {
	case casn1.SEQUENCE:
		if !p.ReadASN1(&seq, casn1.SEQUENCE) {
			return nil, 0, errDecrypt("malformed GCMParameters")
		}
	case tagPrimitiveSequence:
		var inner cryptobyte.String
		if !p.ReadASN1(&inner, tagPrimitiveSequence) || !inner.ReadASN1(&seq, casn1.SEQUENCE) || !inner.Empty() {
			return nil, 0, errDecrypt("malformed GCMParameters")
		}
	default:
		return nil, 0, errDecrypt("malformed GCMParameters")
	}
	switch {
	case seq.PeekASN1Tag(casn1.OCTET_STRING):
		seq.ReadASN1((*cryptobyte.String)(&nonce), casn1.OCTET_STRING)
	case seq.PeekASN1Tag(tagImplicit4):
		seq.ReadASN1((*cryptobyte.String)(&nonce), tagImplicit4)
	}
	icvLen = 12
	if !seq.Empty() && !seq.ReadASN1Integer(&icvLen) {
		return nil, 0, errDecrypt("malformed GCMParameters")
	}
	if len(nonce) == 0 || !seq.Empty() || icvLen < 12 || icvLen > 16 {
		return nil, 0, errDecrypt("malformed GCMParameters")
	}
	if len(nonce) != 12 && icvLen != 16 {
		return nil, 0, errUnsupported("GCM with a %d-byte nonce and a %d-byte ICV", len(nonce), icvLen)
	}
	return nonce, icvLen, nil
}

// parseKeyTransport fills in p's key transport from a keyEncryptionAlgorithm. It
// reports whether the OAEP parameters name a hash other than SHA-1 but leave the
// mask generation function at its SHA-1 default (see Decrypt for why that
// matters).
func parseKeyTransport(a algorithmIdentifier, p *Params) (mgfDefaulted bool, err error) {
	switch {
	case a.oid.Equal(oidRSAEncryption):
		p.KeyTransport = RSAPKCS1v15
		return false, nil
	case a.oid.Equal(oidRSAESOAEP):
		p.KeyTransport = RSAOAEP
	default:
		return false, errUnsupported("key transport %v", a.oid)
	}
	// RSAES-OAEP-params ::= SEQUENCE {
	//   hashFunc    [0] AlgorithmIdentifier DEFAULT sha1Identifier,
	//   maskGenFunc [1] AlgorithmIdentifier DEFAULT mgf1SHA1Identifier,
	//   pSourceFunc [2] AlgorithmIdentifier DEFAULT pSpecifiedEmptyIdentifier }
	// (RFC 4055, Section 4.1). Absent or NULL parameters are read as the defaults.
	hash, mgf := crypto.SHA1, crypto.SHA1
	if !a.absentOrNull() {
		bad := errDecrypt("malformed RSAES-OAEP parameters")
		s := a.params
		var seq cryptobyte.String
		if !s.ReadASN1(&seq, casn1.SEQUENCE) {
			return false, bad
		}
		if seq.PeekASN1Tag(tagExplicit0) {
			var e cryptobyte.String
			var h algorithmIdentifier
			if !seq.ReadASN1(&e, tagExplicit0) || !readAlgorithmIdentifier(&e, &h) || !e.Empty() {
				return false, bad
			}
			if hash = hashByOID(h.oid); hash == 0 {
				return false, errUnsupported("OAEP hash %v", h.oid)
			}
		}
		mgfDefaulted = hash != crypto.SHA1 && !seq.PeekASN1Tag(tagExplicit1)
		if seq.PeekASN1Tag(tagExplicit1) {
			var e cryptobyte.String
			var m, mh algorithmIdentifier
			if !seq.ReadASN1(&e, tagExplicit1) || !readAlgorithmIdentifier(&e, &m) || !e.Empty() {
				return false, bad
			}
			if !m.oid.Equal(oidMGF1) {
				return false, errUnsupported("OAEP mask generation function %v", m.oid)
			}
			mp := m.params
			if !readAlgorithmIdentifier(&mp, &mh) || !mp.Empty() {
				return false, bad
			}
			if mgf = hashByOID(mh.oid); mgf == 0 {
				return false, errUnsupported("OAEP MGF1 hash %v", mh.oid)
			}
		}
		if seq.PeekASN1Tag(tagExplicit2) {
			var e cryptobyte.String
			var ps algorithmIdentifier
			if !seq.ReadASN1(&e, tagExplicit2) || !readAlgorithmIdentifier(&e, &ps) || !e.Empty() {
				return false, bad
			}
			if !ps.oid.Equal(oidPSpecified) {
				return false, errUnsupported("OAEP pSourceFunc %v", ps.oid)
			}
			var label cryptobyte.String
			pp := ps.params
			if len(pp) > 0 && (!pp.ReadASN1(&label, casn1.OCTET_STRING) || !pp.Empty()) {
				return false, bad
			}
			if len(label) > 0 {
				return false, errUnsupported("OAEP with a non-empty label")
			}
		}
		if !seq.Empty() || !s.Empty() {
			return false, bad
		}
	}
	p.OAEPHash = hash
	if mgf != hash {
		p.OAEPMGFHash = mgf
	}
	return mgfDefaulted, nil
}

// decryptContent decrypts and, for CBC, unpads the content.
func decryptContent(c ContentEncryption, key, iv []byte, icvLen int, env *envelope) ([]byte, error) {
	info, _ := c.info()
	block, err := c.newBlock(key)
	if err != nil {
		return nil, errDecrypt("%v key: %v", c, err)
	}
	if info.gcm {
		var aead cipher.AEAD
		if len(iv) == 12 {
			aead, err = cipher.NewGCMWithTagSize(block, icvLen)
		} else {
			aead, err = cipher.NewGCMWithNonceSize(block, len(iv))
		}
		if err != nil {
			return nil, errUnsupported("%v: %v", c, err)
		}
		ciphertext := env.ciphertext
		if env.auth {
			if len(env.mac) != icvLen {
				return nil, errDecrypt("mac is %d bytes, want %d", len(env.mac), icvLen)
			}
			ciphertext = append(append(make([]byte, 0, len(ciphertext)+len(env.mac)), ciphertext...), env.mac...)
		}
		plaintext, err := aead.Open(nil, iv, ciphertext, env.aad)
		if err != nil {
			return nil, errDecrypt("%v: %v", c, err)
		}
		return plaintext, nil
	}
	bs := block.BlockSize()
	if len(env.ciphertext) == 0 || len(env.ciphertext)%bs != 0 {
		return nil, errDecrypt("%v ciphertext of %d bytes is not a positive multiple of %d", c, len(env.ciphertext), bs)
	}
	plaintext := make([]byte, len(env.ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plaintext, env.ciphertext)
	plaintext, ok := unpad(plaintext, bs)
	if !ok {
		return nil, errDecrypt("%v: bad padding", c)
	}
	return plaintext, nil
}

// unpad removes PKCS #7 padding (RFC 5652, Section 6.3) from b, whose length is a
// positive multiple of bs. The check runs in constant time for a given length.
func unpad(b []byte, bs int) ([]byte, bool) {
	if len(b) == 0 || bs <= 0 || bs > 255 || len(b)%bs != 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, bs)
	for i := 1; i <= bs; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, n)
		same := subtle.ConstantTimeByteEq(b[len(b)-i], byte(n)) //nolint:gosec // G115: n was read from a byte
		good &= subtle.ConstantTimeSelect(inPad, same, 1)
	}
	if good != 1 {
		return nil, false
	}
	return b[:len(b)-n], true
}
