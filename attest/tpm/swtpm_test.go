package tpm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/scepca/scepca/attest/tpm"
	"github.com/scepca/scepca/attest/tpm/swtpmtest"
)

type fixture struct {
	d       *tpm.Device
	ak, key *tpm.Key
	extra   []byte
	ev      *tpm.Evidence
	keyPub  crypto.PublicKey
}

// newFixture starts a swtpm, creates a restricted AK and a signing key in
// it, and certifies the key over the nonce's message.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	d, err := tpm.Open(swtpmtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	f := &fixture{d: d, extra: tpm.ExtraData([]byte("scepca-attest-v1\nNONCE\ndevice-1\n"))}
	if f.ak, err = d.CreateKey(tpm.AKTemplate()); err != nil {
		t.Fatal(err)
	}
	if f.key, err = d.CreateKey(tpm.KeyTemplate()); err != nil {
		t.Fatal(err)
	}
	if f.ev, err = d.Certify(f.ak, f.key, f.extra); err != nil {
		t.Fatal(err)
	}
	if f.keyPub, err = tpm.PublicKey(f.key.Public); err != nil {
		t.Fatal(err)
	}
	return f
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("Verify: %v, want %v", err, want)
	}
}

func TestSWTPMCertifiedKeyAccepted(t *testing.T) {
	f := newFixture(t)
	res, err := tpm.Verify(f.ev, f.extra, f.keyPub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := tpm.Verify(f.ev, f.extra, f.keyPub, res.AKName); err != nil {
		t.Fatalf("Verify with the pinned AK: %v", err)
	}
	// The key signs through the TPM (the CSR path).
	s, err := f.d.Signer(f.key)
	if err != nil {
		t.Fatal(err)
	}
	d := tpm.ExtraData([]byte("message"))
	sig, err := s.Sign(rand.Reader, d, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(f.keyPub.(*ecdsa.PublicKey), d, sig) {
		t.Fatal("the TPM signature does not verify")
	}
}

func TestSWTPMNegatives(t *testing.T) {
	f := newFixture(t)
	good, err := tpm.Verify(f.ev, f.extra, f.keyPub)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("software key", func(t *testing.T) {
		// A software key loaded into the TPM and certified by the AK:
		// the TPM says truthfully that it did not make it.
		sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := tpm.KeyTemplate()
		tmpl.ObjectAttributes.FixedTPM, tmpl.ObjectAttributes.FixedParent, tmpl.ObjectAttributes.SensitiveDataOrigin = false, false, false
		b, _ := sk.PublicKey.Bytes()
		tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: b[1:33]}, Y: tpm2.TPM2BECCParameter{Buffer: b[33:]},
		})
		priv, _ := sk.Bytes()
		ext, err := tpm2.LoadExternal{
			InPrivate: tpm2.New2B(tpm2.TPMTSensitive{
				SensitiveType: tpm2.TPMAlgECC,
				Sensitive:     tpm2.NewTPMUSensitiveComposite(tpm2.TPMAlgECC, &tpm2.TPM2BECCParameter{Buffer: priv}),
			}),
			InPublic:  tpm2.New2B(tmpl),
			Hierarchy: tpm2.TPMRHNull,
		}.Execute(f.d.Transport())
		if err != nil {
			t.Fatalf("LoadExternal: %v", err)
		}
		defer func() { _, _ = tpm2.FlushContext{FlushHandle: ext.ObjectHandle}.Execute(f.d.Transport()) }()
		akh := loadAK(t, f)
		ev, err := f.d.CertifyLoaded(f.ak.Public, akh, tpm2.Marshal(tpm2.New2B(tmpl)),
			tpm2.AuthHandle{Handle: ext.ObjectHandle, Name: ext.Name, Auth: tpm2.PasswordAuth(nil)}, f.extra)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tpm.Verify(ev, f.extra, &sk.PublicKey)
		wantErr(t, err, tpm.ErrKeyNotTPMBound)
		// And a software key presented with the TPM key's evidence.
		_, err = tpm.Verify(f.ev, f.extra, &sk.PublicKey)
		wantErr(t, err, tpm.ErrKeyMismatch)
	})

	t.Run("key without fixedTPM", func(t *testing.T) {
		tmpl := tpm.KeyTemplate()
		tmpl.ObjectAttributes.FixedTPM, tmpl.ObjectAttributes.FixedParent = false, false
		k, err := f.d.CreateKey(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := f.d.Certify(f.ak, k, f.extra)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := tpm.PublicKey(k.Public)
		_, err = tpm.Verify(ev, f.extra, pub)
		wantErr(t, err, tpm.ErrKeyNotTPMBound)
	})

	t.Run("wrong nonce", func(t *testing.T) {
		_, err := tpm.Verify(f.ev, tpm.ExtraData([]byte("scepca-attest-v1\nOTHER\ndevice-1\n")), f.keyPub)
		wantErr(t, err, tpm.ErrExtraData)
	})

	t.Run("wrong key", func(t *testing.T) {
		k, err := f.d.CreateKey(tpm.KeyTemplate())
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := tpm.PublicKey(k.Public)
		_, err = tpm.Verify(f.ev, f.extra, pub)
		wantErr(t, err, tpm.ErrKeyMismatch)
		// keyPublic swapped for the other key: the certified name differs.
		ev := *f.ev
		ev.KeyPublic = k.Public
		_, err = tpm.Verify(&ev, f.extra, pub)
		wantErr(t, err, tpm.ErrNameMismatch)
	})

	t.Run("AK not restricted", func(t *testing.T) {
		ak, err := f.d.CreateKey(tpm.KeyTemplate())
		if err != nil {
			t.Fatal(err)
		}
		ev, err := f.d.Certify(ak, f.key, f.extra)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tpm.Verify(ev, f.extra, f.keyPub)
		wantErr(t, err, tpm.ErrAKNotRestricted)
	})

	t.Run("tampered attest bytes", func(t *testing.T) {
		ev := *f.ev
		ev.CertifyInfo = append([]byte(nil), f.ev.CertifyInfo...)
		ev.CertifyInfo[4+2+2+34+2+32+3] ^= 1 // inside clockInfo
		_, err := tpm.Verify(&ev, f.extra, f.keyPub)
		wantErr(t, err, tpm.ErrBadSignature)
		ev.CertifyInfo = append([]byte(nil), f.ev.CertifyInfo...)
		ev.CertifyInfo[0] ^= 1
		_, err = tpm.Verify(&ev, f.extra, f.keyPub)
		wantErr(t, err, tpm.ErrNotTPMGenerated)
		ev.CertifyInfo = append([]byte(nil), f.ev.CertifyInfo...)
		ev.CertifyInfo[5] = 0x18 // TPM_ST_ATTEST_QUOTE
		_, err = tpm.Verify(&ev, f.extra, f.keyPub)
		if !errors.Is(err, tpm.ErrNotCertify) && !errors.Is(err, tpm.ErrMalformed) {
			t.Fatalf("Verify: %v, want not certify or malformed", err)
		}
		ev.CertifyInfo = append(append([]byte(nil), f.ev.CertifyInfo...), 0)
		_, err = tpm.Verify(&ev, f.extra, f.keyPub)
		wantErr(t, err, tpm.ErrMalformed)
	})

	t.Run("signature by another AK", func(t *testing.T) {
		ak2, err := f.d.CreateKey(tpm.AKTemplate())
		if err != nil {
			t.Fatal(err)
		}
		ev2, err := f.d.Certify(ak2, f.key, f.extra)
		if err != nil {
			t.Fatal(err)
		}
		ev := *f.ev
		ev.Signature = ev2.Signature
		_, err = tpm.Verify(&ev, f.extra, f.keyPub)
		wantErr(t, err, tpm.ErrBadSignature)
		// The other AK's own evidence is valid, but not the pinned AK.
		_, err = tpm.Verify(ev2, f.extra, f.keyPub, good.AKName)
		wantErr(t, err, tpm.ErrAKNotPinned)
	})
}

func loadAK(t *testing.T, f *fixture) tpm2.AuthHandle {
	t.Helper()
	srk, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}.Execute(f.d.Transport())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = tpm2.FlushContext{FlushHandle: srk.ObjectHandle}.Execute(f.d.Transport()) }()
	pub, _ := tpm2.Unmarshal[tpm2.TPM2BPublic](f.ak.Public)
	priv, _ := tpm2.Unmarshal[tpm2.TPM2BPrivate](f.ak.Private)
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srk.ObjectHandle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    *priv, InPublic: *pub,
	}.Execute(f.d.Transport())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tpm2.FlushContext{FlushHandle: rsp.ObjectHandle}.Execute(f.d.Transport()) })
	return tpm2.AuthHandle{Handle: rsp.ObjectHandle, Name: rsp.Name, Auth: tpm2.PasswordAuth(nil)}
}
