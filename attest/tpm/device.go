package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
)

// Device is a TPM reached through go-tpm: a character device
// (/dev/tpmrm0) or a swtpm Unix socket. Keys live under the TCG reference
// ECC P-256 SRK of the owner hierarchy, recreated on demand (a primary key
// is a function of its template), and are kept outside the TPM as their
// wrapped blobs (Key). A Device is not safe for concurrent use; every
// operation loads what it needs and flushes it again, so at most three
// objects are loaded at a time.
type Device struct {
	t transport.TPMCloser
}

// Open opens the TPM at path: a Unix socket (swtpm's server socket) or a
// TPM character device.
func Open(path string) (*Device, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tpm: %w", err)
	}
	var t transport.TPMCloser
	if fi.Mode()&os.ModeSocket != 0 {
		t, err = linuxudstpm.Open(path)
	} else {
		t, err = linuxtpm.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("tpm: open %s: %w", path, err)
	}
	return &Device{t: t}, nil
}

// Close closes the connection.
func (d *Device) Close() error { return d.t.Close() }

// Transport is the underlying go-tpm transport.
func (d *Device) Transport() transport.TPM { return d.t }

// Key is a key created under the SRK: its TPM2B_PUBLIC and its wrapped
// TPM2B_PRIVATE, which only the TPM that created it can load.
type Key struct {
	Public  []byte
	Private []byte
}

// AKTemplate is an attestation key: ECC P-256, restricted, signing with
// ECDSA SHA-256, fixedTPM and fixedParent.
func AKTemplate() tpm2.TPMTPublic {
	t := KeyTemplate()
	t.ObjectAttributes.Restricted = true
	return t
}

// KeyTemplate is a general-purpose signing key that never leaves the TPM:
// ECC P-256, ECDSA SHA-256, fixedTPM, fixedParent, sensitiveDataOrigin.
func KeyTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			UserWithAuth:        true,
			SignEncrypt:         true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			CurveID: tpm2.TPMECCNistP256,
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
		}),
	}
}

func (d *Device) srk() (tpm2.TPMHandle, tpm2.TPM2BName, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(d.t)
	if err != nil {
		return 0, tpm2.TPM2BName{}, fmt.Errorf("tpm: create SRK: %w", err)
	}
	return rsp.ObjectHandle, rsp.Name, nil
}

func (d *Device) flush(h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(d.t)
}

// CreateKey creates a key from tmpl under the SRK.
func (d *Device) CreateKey(tmpl tpm2.TPMTPublic) (*Key, error) {
	h, name, err := d.srk()
	if err != nil {
		return nil, err
	}
	defer d.flush(h)
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: h, Name: name, Auth: tpm2.PasswordAuth(nil)},
		InPublic:     tpm2.New2B(tmpl),
	}.Execute(d.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: create key: %w", err)
	}
	return &Key{Public: tpm2.Marshal(rsp.OutPublic), Private: tpm2.Marshal(rsp.OutPrivate)}, nil
}

// load loads keys under the SRK; the caller flushes the handles.
func (d *Device) load(keys ...*Key) ([]tpm2.AuthHandle, error) {
	h, name, err := d.srk()
	if err != nil {
		return nil, err
	}
	defer d.flush(h)
	var out []tpm2.AuthHandle
	for _, k := range keys {
		pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](k.Public)
		if err == nil {
			var priv *tpm2.TPM2BPrivate
			if priv, err = tpm2.Unmarshal[tpm2.TPM2BPrivate](k.Private); err == nil {
				var rsp *tpm2.LoadResponse
				rsp, err = tpm2.Load{
					ParentHandle: tpm2.AuthHandle{Handle: h, Name: name, Auth: tpm2.PasswordAuth(nil)},
					InPrivate:    *priv,
					InPublic:     *pub,
				}.Execute(d.t)
				if err == nil {
					out = append(out, tpm2.AuthHandle{Handle: rsp.ObjectHandle, Name: rsp.Name, Auth: tpm2.PasswordAuth(nil)})
					continue
				}
			}
		}
		for _, o := range out {
			d.flush(o.Handle)
		}
		return nil, fmt.Errorf("tpm: load key: %w", err)
	}
	return out, nil
}

// Certify has ak certify key over extraData (TPM2_Certify) and returns the
// evidence.
func (d *Device) Certify(ak, key *Key, extraData []byte) (*Evidence, error) {
	hs, err := d.load(ak, key)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, h := range hs {
			d.flush(h.Handle)
		}
	}()
	return d.CertifyLoaded(ak.Public, hs[0], key.Public, hs[1], extraData)
}

// CertifyLoaded certifies loaded objects: the AK at akHandle (whose
// TPM2B_PUBLIC is akPublic) certifies the object at keyHandle.
func (d *Device) CertifyLoaded(akPublic []byte, akHandle tpm2.AuthHandle, keyPublic []byte, keyHandle tpm2.AuthHandle, extraData []byte) (*Evidence, error) {
	rsp, err := tpm2.Certify{
		ObjectHandle:   keyHandle,
		SignHandle:     akHandle,
		QualifyingData: tpm2.TPM2BData{Buffer: extraData},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(d.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: certify: %w", err)
	}
	return &Evidence{
		AKPublic:    akPublic,
		CertifyInfo: rsp.CertifyInfo.Bytes(),
		Signature:   tpm2.Marshal(rsp.Signature),
		KeyPublic:   keyPublic,
	}, nil
}

// Signer returns a crypto.Signer over an ECC key of the TPM: Sign takes a
// SHA-256 digest and returns an ASN.1 ECDSA signature, as x509 wants.
func (d *Device) Signer(key *Key) (crypto.Signer, error) {
	pub, err := PublicKey(key.Public)
	if err != nil {
		return nil, err
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return nil, errors.New("tpm: signer: only ECC keys are supported")
	}
	return &signer{d: d, key: key, pub: pub}, nil
}

// PublicKey returns the Go public key of a TPM2B_PUBLIC.
func PublicKey(tpm2bPublic []byte) (crypto.PublicKey, error) {
	p, err := tpm2.Unmarshal[tpm2.TPM2BPublic](tpm2bPublic)
	if err != nil {
		return nil, fmt.Errorf("tpm: public: %w", err)
	}
	c, err := p.Contents()
	if err != nil {
		return nil, fmt.Errorf("tpm: public: %w", err)
	}
	return tpm2.Pub(*c)
}

type signer struct {
	d   *Device
	key *Key
	pub crypto.PublicKey
}

func (s *signer) Public() crypto.PublicKey { return s.pub }

func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("tpm: signer: hash %v, want SHA-256", opts.HashFunc())
	}
	hs, err := s.d.load(s.key)
	if err != nil {
		return nil, err
	}
	defer s.d.flush(hs[0].Handle)
	rsp, err := tpm2.Sign{
		KeyHandle:  hs[0],
		Digest:     tpm2.TPM2BDigest{Buffer: digest},
		InScheme:   tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(s.d.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: sign: %w", err)
	}
	e, err := rsp.Signature.Signature.ECDSA()
	if err != nil {
		return nil, fmt.Errorf("tpm: sign: %w", err)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer),
	})
}

// The PEM types of a key file: the two blobs of a Key.
const (
	pemPublic  = "TPM2B PUBLIC"
	pemPrivate = "TPM2B PRIVATE"
)

// MarshalKey encodes k as two PEM blocks.
func MarshalKey(k *Key) []byte {
	return append(pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: k.Public}),
		pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: k.Private})...)
}

// ParseKey decodes MarshalKey's output.
func ParseKey(b []byte) (*Key, error) {
	k := &Key{}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case pemPublic:
			k.Public = blk.Bytes
		case pemPrivate:
			k.Private = blk.Bytes
		}
	}
	if k.Public == nil || k.Private == nil {
		return nil, errors.New("tpm: key file lacks a TPM2B PUBLIC or TPM2B PRIVATE block")
	}
	return k, nil
}
