// Package tpm verifies TPM 2.0 key certification evidence (TPM2_Certify by a
// restricted attestation key over a signing key) and produces it from a TPM
// reached through go-tpm. See docs/attestation.md, "TPM key attestation".
package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// Evidence is what a device presents: all four fields are TPM wire
// structures, exactly as the TPM returned them.
type Evidence struct {
	// AKPublic is the TPM2B_PUBLIC of the attestation key.
	AKPublic []byte `json:"akPublic"`
	// CertifyInfo is the TPMS_ATTEST that TPM2_Certify signed (the
	// contents of the TPM2B_ATTEST, without its size).
	CertifyInfo []byte `json:"certifyInfo"`
	// Signature is the TPMT_SIGNATURE of CertifyInfo by the AK.
	Signature []byte `json:"signature"`
	// KeyPublic is the TPM2B_PUBLIC of the certified key.
	KeyPublic []byte `json:"keyPublic"`
}

// The refusals of Verify, one per check; match them with errors.Is. Every
// error Verify returns wraps exactly one of them.
var (
	ErrMalformed        = errors.New("tpm: evidence is not well-formed TPM structures")
	ErrNotTPMGenerated  = errors.New("tpm: certifyInfo magic is not TPM_GENERATED_VALUE")
	ErrNotCertify       = errors.New("tpm: certifyInfo is not of type TPM_ST_ATTEST_CERTIFY")
	ErrExtraData        = errors.New("tpm: certifyInfo extraData is not the SHA-256 of the signed message for this nonce")
	ErrNameMismatch     = errors.New("tpm: the certified name is not the name of keyPublic")
	ErrKeyNotTPMBound   = errors.New("tpm: the certified key lacks fixedTPM, fixedParent, sensitiveDataOrigin or sign")
	ErrAKNotRestricted  = errors.New("tpm: the attestation key is not a restricted signing key that never leaves its TPM")
	ErrBadSignature     = errors.New("tpm: the signature over certifyInfo does not verify under the attestation key")
	ErrKeyMismatch      = errors.New("tpm: the certified key is not the certificate's key")
	ErrAKNotPinned      = errors.New("tpm: the attestation key is not the one pinned for this device")
	errUnsupportedAlgID = errors.New("unsupported algorithm")
)

// Result describes verified evidence.
type Result struct {
	// AKName is the uppercase hexadecimal TPM Name of the attestation key
	// (nameAlg || H(TPMT_PUBLIC)), the value pinned per device.
	AKName string
}

// Verify checks ev: certifyInfo is TPM-generated (magic), of type
// ATTEST_CERTIFY, its extraData equals extraData (the verifier passes
// SHA-256 of attest.Message for the nonce), its certified name is the Name
// of keyPublic; keyPublic has fixedTPM, fixedParent, sensitiveDataOrigin
// and sign; the AK is a restricted signing key with fixedTPM and
// fixedParent; the signature verifies under the AK; keyPublic's key equals
// certPublicKey; and, when pinnedAK is given and not empty, the AK's Name
// equals it (hexadecimal, case-insensitive). Verify never panics, whatever
// the bytes.
func Verify(ev *Evidence, extraData []byte, certPublicKey crypto.PublicKey, pinnedAK ...string) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("%w: %v", ErrMalformed, p)
		}
	}()
	if ev == nil {
		return nil, fmt.Errorf("%w: no evidence", ErrMalformed)
	}
	akPub, err := parsePublic(ev.AKPublic, "akPublic")
	if err != nil {
		return nil, err
	}
	keyPub, err := parsePublic(ev.KeyPublic, "keyPublic")
	if err != nil {
		return nil, err
	}
	// Check the magic on the raw bytes: go-tpm's unmarshaller refuses a
	// wrong magic as a generic error.
	if len(ev.CertifyInfo) < 4 {
		return nil, fmt.Errorf("%w: certifyInfo is %d bytes", ErrMalformed, len(ev.CertifyInfo))
	}
	if !bytes.Equal(ev.CertifyInfo[:4], []byte{0xff, 0x54, 0x43, 0x47}) {
		return nil, ErrNotTPMGenerated
	}
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](ev.CertifyInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: certifyInfo: %v", ErrMalformed, err)
	}
	if !bytes.Equal(tpm2.Marshal(att), ev.CertifyInfo) {
		return nil, fmt.Errorf("%w: certifyInfo has trailing or non-canonical bytes", ErrMalformed)
	}
	if att.Magic != tpm2.TPMGeneratedValue {
		return nil, ErrNotTPMGenerated
	}
	if att.Type != tpm2.TPMSTAttestCertify {
		return nil, fmt.Errorf("%w: type %#x", ErrNotCertify, uint16(att.Type))
	}
	certified, err := att.Attested.Certify()
	if err != nil {
		return nil, fmt.Errorf("%w: certifyInfo attested: %v", ErrMalformed, err)
	}
	if len(extraData) == 0 || subtle.ConstantTimeCompare(att.ExtraData.Buffer, extraData) != 1 {
		return nil, ErrExtraData
	}
	keyName, err := tpm2.ObjectName(keyPub)
	if err != nil {
		return nil, fmt.Errorf("%w: keyPublic name: %v", ErrMalformed, err)
	}
	if !bytes.Equal(certified.Name.Buffer, keyName.Buffer) {
		return nil, ErrNameMismatch
	}
	if a := keyPub.ObjectAttributes; !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.SignEncrypt || a.Restricted {
		return nil, fmt.Errorf("%w (fixedTPM %t, fixedParent %t, sensitiveDataOrigin %t, sign %t, restricted %t)",
			ErrKeyNotTPMBound, a.FixedTPM, a.FixedParent, a.SensitiveDataOrigin, a.SignEncrypt, a.Restricted)
	}
	if a := akPub.ObjectAttributes; !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent {
		return nil, fmt.Errorf("%w (restricted %t, sign %t, decrypt %t, fixedTPM %t, fixedParent %t)",
			ErrAKNotRestricted, a.Restricted, a.SignEncrypt, a.Decrypt, a.FixedTPM, a.FixedParent)
	}
	akKey, err := tpm2.Pub(*akPub)
	if err != nil {
		return nil, fmt.Errorf("%w: akPublic key: %v", ErrMalformed, err)
	}
	if k, ok := akKey.(*rsa.PublicKey); ok && (k.N.BitLen() < 2048 || k.N.BitLen() > 4096) {
		return nil, fmt.Errorf("%w: a %d-bit RSA attestation key", ErrMalformed, k.N.BitLen())
	}
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](ev.Signature)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	if err := checkSignature(akKey, sig, ev.CertifyInfo); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	key, err := tpm2.Pub(*keyPub)
	if err != nil {
		return nil, fmt.Errorf("%w: keyPublic key: %v", ErrMalformed, err)
	}
	eq, ok := key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || certPublicKey == nil || !eq.Equal(certPublicKey) {
		return nil, ErrKeyMismatch
	}
	akName, err := tpm2.ObjectName(akPub)
	if err != nil {
		return nil, fmt.Errorf("%w: akPublic name: %v", ErrMalformed, err)
	}
	res = &Result{AKName: strings.ToUpper(hex.EncodeToString(akName.Buffer))}
	for _, pin := range pinnedAK {
		if pin != "" && !strings.EqualFold(pin, res.AKName) {
			return nil, ErrAKNotPinned
		}
	}
	return res, nil
}

// parsePublic reads a TPM2B_PUBLIC, with nothing after it.
func parsePublic(b []byte, field string) (*tpm2.TPMTPublic, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrMalformed, field)
	}
	p2b, err := tpm2.Unmarshal[tpm2.TPM2BPublic](b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, field, err)
	}
	pub, err := p2b.Contents()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, field, err)
	}
	if !bytes.Equal(tpm2.Marshal(tpm2.New2B(*pub)), b) {
		return nil, fmt.Errorf("%w: %s has trailing or non-canonical bytes", ErrMalformed, field)
	}
	return pub, nil
}

// checkSignature verifies a TPMT_SIGNATURE (RSASSA, RSAPSS or ECDSA with
// SHA-256, SHA-384 or SHA-512) over msg under pub.
func checkSignature(pub crypto.PublicKey, sig *tpm2.TPMTSignature, msg []byte) error {
	hashOf := func(alg tpm2.TPMIAlgHash) (crypto.Hash, []byte, error) {
		var h crypto.Hash
		switch alg {
		case tpm2.TPMAlgSHA256:
			h = crypto.SHA256
		case tpm2.TPMAlgSHA384:
			h = crypto.SHA384
		case tpm2.TPMAlgSHA512:
			h = crypto.SHA512
		default:
			return 0, nil, fmt.Errorf("%w: hash %#x", errUnsupportedAlgID, uint16(alg))
		}
		d := h.New()
		d.Write(msg)
		return h, d.Sum(nil), nil
	}
	switch sig.SigAlg {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return errors.New("an RSA signature by a non-RSA attestation key")
		}
		var s *tpm2.TPMSSignatureRSA
		var err error
		if sig.SigAlg == tpm2.TPMAlgRSASSA {
			s, err = sig.Signature.RSASSA()
		} else {
			s, err = sig.Signature.RSAPSS()
		}
		if err != nil {
			return err
		}
		h, d, err := hashOf(s.Hash)
		if err != nil {
			return err
		}
		if sig.SigAlg == tpm2.TPMAlgRSASSA {
			return rsa.VerifyPKCS1v15(k, h, d, s.Sig.Buffer)
		}
		return rsa.VerifyPSS(k, h, d, s.Sig.Buffer, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case tpm2.TPMAlgECDSA:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return errors.New("an ECDSA signature by a non-ECC attestation key")
		}
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return err
		}
		_, d, err := hashOf(s.Hash)
		if err != nil {
			return err
		}
		r, ss := new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer)
		if !ecdsa.Verify(k, d, r, ss) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	}
	return fmt.Errorf("%w: signature algorithm %#x", errUnsupportedAlgID, uint16(sig.SigAlg))
}

// ExtraData is what a device certifies over for a message: its SHA-256.
// The verifier passes ExtraData(attest.Message(nonce, deviceID)).
func ExtraData(message []byte) []byte {
	d := sha256.Sum256(message)
	return d[:]
}
