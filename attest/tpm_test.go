package attest_test

import (
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/tpm"
	"github.com/scepca/scepca/attest/tpm/swtpmtest"
	"github.com/scepca/scepca/store"
)

// TestVerifyTPMEvidence: a certificate whose key lives in a (software) TPM,
// certified by a restricted AK over the proof's nonce, is hardwareBacked;
// the AK is pinned on first use; an integration that requires a hardware
// key refuses missing, invalid and other-AK evidence.
func TestVerifyTPMEvidence(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	d, err := tpm.Open(swtpmtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ak, err := d.CreateKey(tpm.AKTemplate())
	if err != nil {
		t.Fatal(err)
	}
	key, err := d.CreateKey(tpm.KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := d.Signer(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := f.issue(t, signer, "alice managementAttestation dev-tpm")
	in := &store.Integration{ID: "int-desktop", Name: "desktops", Platform: store.PlatformDesktop, Enabled: true, CreatedAt: f.clock.Now()}
	if err := f.db.CreateIntegration(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	proof := func(certifier *tpm.Key, nonceFor string) *attest.VerifyRequest {
		t.Helper()
		req := f.desktopProof(t, signer, cert, "dev-tpm", attest.AlgECDSASHA256)
		if certifier != nil {
			if nonceFor == "" {
				nonceFor = req.Nonce
			}
			ev, err := d.Certify(certifier, key, tpm.ExtraData(attest.Message(nonceFor, "dev-tpm")))
			if err != nil {
				t.Fatal(err)
			}
			req.TPM = attest.EncodeTPMEvidence(ev)
		}
		return req
	}
	hw := func(desc string, dc *attest.DeviceContext, backed bool, why string) {
		t.Helper()
		if dc.HardwareBacked != backed || dc.HardwareBackedReason != why {
			t.Errorf("%s: hardwareBacked %v (%s: %s), want %v (%s)", desc, dc.HardwareBacked, dc.HardwareBackedReason, dc.HardwareBackedDetail, backed, why)
		}
	}

	dc := f.verify(t, proof(nil, ""))
	wantReason(t, "no evidence", dc, attest.ReasonManaged)
	hw("no evidence", dc, false, attest.HardwareNoEvidence)

	dc = f.verify(t, proof(ak, ""))
	wantReason(t, "evidence", dc, attest.ReasonManaged)
	hw("evidence", dc, true, attest.HardwareTPMKeyCertified)
	dev, err := f.db.GetDevice(t.Context(), "dev-tpm")
	if err != nil {
		t.Fatal(err)
	}
	if dev.TPMAKName == "" || dev.TPMAKName != dc.TPMAKName {
		t.Fatalf("device pinned AK %q, want %q", dev.TPMAKName, dc.TPMAKName)
	}

	dc = f.verify(t, proof(ak, "another-nonce"))
	wantReason(t, "evidence over another nonce", dc, attest.ReasonManaged)
	hw("evidence over another nonce", dc, false, attest.HardwareEvidenceInvalid)

	ak2, err := d.CreateKey(tpm.AKTemplate())
	if err != nil {
		t.Fatal(err)
	}
	dc = f.verify(t, proof(ak2, ""))
	wantReason(t, "another AK", dc, attest.ReasonManaged)
	hw("another AK", dc, false, attest.HardwareAKNotPinned)

	in.RequireHardwareKey = true
	if err := f.db.UpdateIntegration(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	dc = f.verify(t, proof(nil, ""))
	wantReason(t, "required, no evidence", dc, attest.ReasonKeyNotHardwareBacked)
	dc = f.verify(t, proof(ak, "another-nonce"))
	wantReason(t, "required, evidence over another nonce", dc, attest.ReasonKeyNotHardwareBacked)
	req := proof(ak2, "")
	dc = f.verify(t, req)
	wantReason(t, "required, another AK", dc, attest.ReasonKeyNotHardwareBacked)
	hw("required, another AK", dc, false, attest.HardwareAKNotPinned)
	dc = f.verify(t, req)
	wantReason(t, "replayed nonce", dc, attest.ReasonNonceUsed)
	dc = f.verify(t, proof(ak, ""))
	wantReason(t, "required, pinned AK", dc, attest.ReasonManaged)
	hw("required, pinned AK", dc, true, attest.HardwareTPMKeyCertified)
}
