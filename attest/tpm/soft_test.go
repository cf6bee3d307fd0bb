package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// eccPublic is tmpl with the unique point of k.
func eccPublic(tmpl tpm2.TPMTPublic, k *ecdsa.PublicKey) tpm2.TPMTPublic {
	b, _ := k.Bytes() // uncompressed point: 0x04 || X || Y
	tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: b[1:33]},
		Y: tpm2.TPM2BECCParameter{Buffer: b[33:]},
	})
	return tmpl
}

// softEvidence builds evidence in software, as a TPM would: an AK and a
// key from the templates, certifyInfo over extraData signed by the AK. It
// lets the accept path and the fuzzer run without swtpm.
func softEvidence(t testing.TB, extraData []byte) (*Evidence, crypto.PublicKey) {
	t.Helper()
	akKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	akPub := eccPublic(AKTemplate(), &akKey.PublicKey)
	keyPub := eccPublic(KeyTemplate(), &key.PublicKey)
	akName, err := tpm2.ObjectName(&akPub)
	if err != nil {
		t.Fatal(err)
	}
	keyName, err := tpm2.ObjectName(&keyPub)
	if err != nil {
		t.Fatal(err)
	}
	att := tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestCertify,
		QualifiedSigner: *akName,
		ExtraData:       tpm2.TPM2BData{Buffer: extraData},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{
			Name: *keyName, QualifiedName: *keyName,
		}),
	}
	info := tpm2.Marshal(att)
	d := sha256.Sum256(info)
	r, s, err := ecdsa.Sign(rand.Reader, akKey, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := tpm2.TPMTSignature{
		SigAlg: tpm2.TPMAlgECDSA,
		Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash:       tpm2.TPMAlgSHA256,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: r.FillBytes(make([]byte, 32))},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: s.FillBytes(make([]byte, 32))},
		}),
	}
	return &Evidence{
		AKPublic:    tpm2.Marshal(tpm2.New2B(akPub)),
		CertifyInfo: info,
		Signature:   tpm2.Marshal(sig),
		KeyPublic:   tpm2.Marshal(tpm2.New2B(keyPub)),
	}, &key.PublicKey
}

func TestVerifySoftwareBuiltEvidence(t *testing.T) {
	extra := ExtraData([]byte("scepca-attest-v1\nn\nd\n"))
	ev, pub := softEvidence(t, extra)
	res, err := Verify(ev, extra, pub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(res.AKName) != 68 {
		t.Fatalf("AKName %q, want 34 bytes in hex", res.AKName)
	}
	if _, err := Verify(ev, extra, pub, res.AKName); err != nil {
		t.Fatalf("Verify pinned: %v", err)
	}
}

func FuzzTPMEvidence(f *testing.F) {
	extra := ExtraData([]byte("scepca-attest-v1\nn\nd\n"))
	ev, _ := softEvidence(f, extra)
	f.Add(ev.AKPublic, ev.CertifyInfo, ev.Signature, ev.KeyPublic)
	f.Add([]byte{}, []byte{0xff, 0x54, 0x43, 0x47}, []byte{0, 0x18}, []byte{0, 2, 0, 0x23})
	f.Fuzz(func(t *testing.T, ak, info, sig, key []byte) {
		e := &Evidence{AKPublic: ak, CertifyInfo: info, Signature: sig, KeyPublic: key}
		pub, _ := PublicKey(key)
		res, err := Verify(e, extra, pub)
		if err == nil && res == nil {
			t.Fatal("nil result without error")
		}
	})
}
