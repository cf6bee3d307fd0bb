package cms

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"testing"

	"github.com/smallstep/pkcs7"
)

// TestSmallstepInterop checks the formats only github.com/smallstep/pkcs7 (v0.2.3)
// writes and reads: GCM inside EnvelopedData with its parameter encoding, and OAEP
// parameters naming a hash but no mask generation function although it masks with
// MGF1 over that hash.
func TestSmallstepInterop(t *testing.T) {
	// Not parallel: smallstep/pkcs7 configures Encrypt through package globals.
	a, _ := testRecipients(t)
	saved := []any{pkcs7.ContentEncryptionAlgorithm, pkcs7.KeyEncryptionAlgorithm, pkcs7.KeyEncryptionHash}
	t.Cleanup(func() {
		pkcs7.ContentEncryptionAlgorithm = saved[0].(int)
		pkcs7.KeyEncryptionAlgorithm = saved[1].(asn1.ObjectIdentifier)
		pkcs7.KeyEncryptionHash = saved[2].(crypto.Hash)
	})
	ciphers := []struct {
		smallstep int // -1: smallstep cannot encrypt it, only decrypt
		c         ContentEncryption
	}{
		{pkcs7.EncryptionAlgorithmDESCBC, DESCBC},
		{-1, DESEDE3CBC},
		{pkcs7.EncryptionAlgorithmAES128CBC, AES128CBC},
		{pkcs7.EncryptionAlgorithmAES256CBC, AES256CBC},
		{pkcs7.EncryptionAlgorithmAES128GCM, AES128GCM},
		{pkcs7.EncryptionAlgorithmAES256GCM, AES256GCM},
	}
	kts := []struct {
		oid  asn1.ObjectIdentifier
		hash crypto.Hash
		p    Params
	}{
		{pkcs7.OIDEncryptionAlgorithmRSA, crypto.SHA256, Params{KeyTransport: RSAPKCS1v15}},
		{pkcs7.OIDEncryptionAlgorithmRSAESOAEP, crypto.SHA1, Params{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA1}},
		{pkcs7.OIDEncryptionAlgorithmRSAESOAEP, crypto.SHA256, Params{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA256}},
		{pkcs7.OIDEncryptionAlgorithmRSAESOAEP, crypto.SHA512, Params{KeyTransport: RSAOAEP, OAEPHash: crypto.SHA512}},
	}
	plaintext := bytes.Repeat([]byte("smallstep "), 100)
	for _, c := range ciphers {
		for _, kt := range kts {
			want := kt.p
			want.ContentEncryption = c.c
			if c.smallstep >= 0 {
				pkcs7.ContentEncryptionAlgorithm = c.smallstep
				pkcs7.KeyEncryptionAlgorithm = kt.oid
				pkcs7.KeyEncryptionHash = kt.hash
				env, err := pkcs7.Encrypt(plaintext, []*x509.Certificate{a.cert})
				if err != nil {
					t.Fatalf("pkcs7.Encrypt(%v) error: %v", want, err)
				}
				got, p, err := Decrypt(env, a.cert, a.key)
				if err != nil || !bytes.Equal(got, plaintext) || p != want {
					t.Errorf("Decrypt(pkcs7.Encrypt(%v)) = %d bytes, %v, %v; want the plaintext", want, len(got), p, err)
				}
			}
			reply := mustEncrypt(t, plaintext, a.cert, want)
			p7, err := pkcs7.Parse(reply)
			if err != nil {
				t.Fatalf("pkcs7.Parse(Encrypt(%v)) error: %v", want, err)
			}
			got, err := p7.Decrypt(a.cert, a.key)
			if err != nil || !bytes.Equal(got, plaintext) {
				t.Errorf("pkcs7 Decrypt(Encrypt(%v)) = %d bytes, %v; want the plaintext", want, len(got), err)
			}
		}
	}
}
