package cms

import (
	"bytes"
	"crypto"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/bits"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// gcmNonceSize and gcmICVSize are what Encrypt writes: the RFC 5084 recommended
// 12-byte nonce and the full 16-byte tag.
const (
	gcmNonceSize = 12
	gcmICVSize   = 16
)

// Encrypt returns a DER ContentInfo holding an EnvelopedData (version 0) whose
// content is plaintext, for one key-transport recipient named by issuer and serial
// number, using the algorithms in p with a fresh random content key and IV or
// nonce. With p.Authenticated it writes an AuthEnvelopedData (RFC 5083) instead.
//
// The recipient must have an RSA public key. OAEP parameters are written in full
// (RFC 4055, Section 4.1), with SHA-1 defaults omitted as DER requires. Encrypt
// keeps no state and is safe for concurrent use. See RFC 5652, Section 6.
func Encrypt(plaintext []byte, recipient *x509.Certificate, p Params) ([]byte, error) {
	if recipient == nil {
		return nil, errors.New("cms: no recipient certificate")
	}
	pub, ok := recipient.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("cms: recipient public key is %T; key transport needs RSA", recipient.PublicKey)
	}
	if len(recipient.RawIssuer) == 0 || recipient.SerialNumber == nil {
		return nil, errors.New("cms: recipient certificate has no issuer or serial number (not parsed?)")
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	info, _ := p.ContentEncryption.info()

	key := make([]byte, info.keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("cms: content key: %w", err)
	}
	if p.ContentEncryption == DESCBC || p.ContentEncryption == DESEDE3CBC {
		setOddParity(key)
	}
	var encryptedKey []byte
	var err error
	switch p.KeyTransport {
	case RSAPKCS1v15:
		//nolint:staticcheck // SA1019: SCEP clients (scepclient, certmonger) use rsaEncryption, PROTOCOLS.md §1.6.
		encryptedKey, err = rsa.EncryptPKCS1v15(rand.Reader, pub, key)
	case RSAOAEP:
		encryptedKey, err = rsa.EncryptOAEPWithOptions(rand.Reader, pub, key,
			&rsa.OAEPOptions{Hash: p.oaepHash(), MGFHash: p.mgfHash()})
	}
	if err != nil {
		return nil, fmt.Errorf("cms: key transport %v: %w", p.KeyTransport, err)
	}

	block, err := p.ContentEncryption.newBlock(key)
	if err != nil {
		return nil, fmt.Errorf("cms: %v: %w", p.ContentEncryption, err)
	}
	var ciphertext, mac []byte
	var addParams func(*cryptobyte.Builder)
	if info.gcm {
		aead, err := cipher.NewGCMWithTagSize(block, gcmICVSize)
		if err != nil {
			return nil, fmt.Errorf("cms: %v: %w", p.ContentEncryption, err)
		}
		nonce := make([]byte, gcmNonceSize)
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("cms: nonce: %w", err)
		}
		ciphertext = aead.Seal(nil, nonce, plaintext, nil)
		if p.Authenticated {
			ciphertext, mac = ciphertext[:len(ciphertext)-gcmICVSize], ciphertext[len(ciphertext)-gcmICVSize:]
			// GCMParameters (RFC 5084, Section 3.2).
			addParams = func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1OctetString(nonce)
					b.AddASN1Int64(gcmICVSize)
				})
			}
		} else {
			// GCM inside EnvelopedData has one known writer and reader,
			// smallstep/pkcs7 (v0.2.3 encrypt.go, encryptAESGCM), which encodes the
			// parameters as a primitive-tagged SEQUENCE wrapping
			// SEQUENCE { [4] IMPLICIT nonce, ICVlen } and the tag after the
			// ciphertext. Write exactly that so such a client can read our reply.
			addParams = func(b *cryptobyte.Builder) {
				b.AddASN1(tagPrimitiveSequence, func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(tagImplicit4, func(b *cryptobyte.Builder) { b.AddBytes(nonce) })
						b.AddASN1Int64(gcmICVSize)
					})
				})
			}
		}
	} else {
		iv := make([]byte, block.BlockSize())
		if _, err := rand.Read(iv); err != nil {
			return nil, fmt.Errorf("cms: IV: %w", err)
		}
		ciphertext = pad(plaintext, block.BlockSize())
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(ciphertext, ciphertext) //nolint:gosec // G407 false positive: iv comes from crypto/rand above
		addParams = func(b *cryptobyte.Builder) { b.AddASN1OctetString(iv) }
	}

	contentType := oidEnvelopedData
	if p.Authenticated {
		contentType = oidAuthEnvelopedData
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(contentType)
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { // (Auth)EnvelopedData
				b.AddASN1Int64(0) // version
				b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { // KeyTransRecipientInfo
						b.AddASN1Int64(0) // version: issuerAndSerialNumber
						b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(recipient.RawIssuer)
							b.AddASN1BigInt(recipient.SerialNumber)
						})
						addKeyTransportAlgorithm(b, p)
						b.AddASN1OctetString(encryptedKey)
					})
				})
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { // EncryptedContentInfo
					b.AddASN1ObjectIdentifier(oidData)
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(info.oid)
						addParams(b)
					})
					b.AddASN1(tagImplicit0, func(b *cryptobyte.Builder) { b.AddBytes(ciphertext) })
				})
				if p.Authenticated {
					b.AddASN1OctetString(mac)
				}
			})
		})
	})
	return b.Bytes()
}

// addKeyTransportAlgorithm writes the keyEncryptionAlgorithm the way OpenSSL does:
// rsaEncryption with NULL parameters; RSAES-OAEP with RSAES-OAEP-params that omit
// the SHA-1 defaults and spell out any other hash, hash parameters absent.
func addKeyTransportAlgorithm(b *cryptobyte.Builder, p Params) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if p.KeyTransport == RSAPKCS1v15 {
			b.AddASN1ObjectIdentifier(oidRSAEncryption)
			b.AddASN1NULL()
			return
		}
		b.AddASN1ObjectIdentifier(oidRSAESOAEP)
		hash, mgf := p.oaepHash(), p.mgfHash()
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if hash != crypto.SHA1 {
				b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(hashOID(hash)) })
				})
			}
			if mgf != crypto.SHA1 {
				b.AddASN1(tagExplicit1, func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidMGF1)
						b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(hashOID(mgf)) })
					})
				})
			}
		})
	})
}

// pad appends PKCS #7 padding (RFC 5652, Section 6.3) to a copy of b.
func pad(b []byte, bs int) []byte {
	n := bs - len(b)%bs
	out := make([]byte, len(b), len(b)+n)
	copy(out, b)
	return append(out, bytes.Repeat([]byte{byte(n)}, n)...) //nolint:gosec // G115: 1 <= n <= bs, a cipher block size (at most 16)
}

// setOddParity sets the DES parity bit (the low bit) of each key byte, as FIPS 46-3
// asks; Go and OpenSSL ignore parity, but stricter peers may not.
func setOddParity(key []byte) {
	for i, k := range key {
		if bits.OnesCount8(k&0xfe)%2 == 0 {
			key[i] = k&0xfe | 1
		} else {
			key[i] = k & 0xfe
		}
	}
}
