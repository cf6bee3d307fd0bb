package storetest

import (
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

// Tests of what Intune delegation needs from the store (PROTOCOLS.md §3.7):
// a transaction whose certificate must be acknowledged before delivery,
// and an integration's Intune fields.

// testConfirmTransaction: a transaction claimed with Confirm becomes
// TxIssued (not TxSuccess) when its certificate is stored, is in flight for
// every other claimant, becomes TxSuccess only by ConfirmTransaction with its
// own claim, and can be released while TxIssued so a retry starts afresh.
func testConfirmTransaction(t *testing.T, s store.Store) {
	ctx := t.Context()

	tx := transaction("int-1", "tx-confirm")
	tx.Confirm = true
	_, err := s.ClaimTransaction(ctx, tx, t0)
	must(t, call("ClaimTransaction", "tx-confirm", t0), err)
	c := certificate("C0")
	c.IntegrationID, c.TransactionID = tx.IntegrationID, tx.TransactionID
	must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))

	want := transaction("int-1", "tx-confirm")
	want.Confirm = true
	want.State = store.TxIssued
	want.Serial = "C0"
	got, err := s.GetTransaction(ctx, "int-1", "tx-confirm")
	must(t, call("GetTransaction", "int-1", "tx-confirm"), err)
	wantDiff(t, call("GetTransaction", "int-1", "tx-confirm")+" after PutCertificate", want, got)

	// Not taken over, even after the lease: the claimant's successor must
	// decide what to do with the issued certificate.
	late := t0.Add(time.Hour)
	existing, err := s.ClaimTransaction(ctx, transaction("int-1", "tx-confirm"), late)
	wantErr(t, call("ClaimTransaction", "tx-confirm", late)+" of an ISSUED record", err, store.ErrExists)
	wantDiff(t, call("ClaimTransaction", "tx-confirm", late)+" existing record", want, existing)

	// Only the claim holder confirms.
	wantErr(t, call("ConfirmTransaction", "int-1", "tx-confirm", "stale"), s.ConfirmTransaction(ctx, "int-1", "tx-confirm", "stale"), store.ErrConflict)
	must(t, call("ConfirmTransaction", "int-1", "tx-confirm"), s.ConfirmTransaction(ctx, "int-1", "tx-confirm", tx.Claim))
	want.State = store.TxSuccess
	got, err = s.GetTransaction(ctx, "int-1", "tx-confirm")
	must(t, call("GetTransaction", "int-1", "tx-confirm"), err)
	wantDiff(t, call("GetTransaction", "int-1", "tx-confirm")+" after ConfirmTransaction", want, got)
	// Confirming twice, or a SUCCESS that never needed it, is a conflict.
	wantErr(t, call("ConfirmTransaction", "int-1", "tx-confirm")+" again", s.ConfirmTransaction(ctx, "int-1", "tx-confirm", tx.Claim), store.ErrConflict)
	// A SUCCESS record is not released.
	must(t, call("ReleaseTransaction", "int-1", "tx-confirm"), s.ReleaseTransaction(ctx, "int-1", "tx-confirm", tx.Claim))
	if _, err := s.GetTransaction(ctx, "int-1", "tx-confirm"); err != nil {
		t.Errorf("GetTransaction(%q, %q) after releasing a confirmed record = %v, want it kept", "int-1", "tx-confirm", err)
	}

	// A PENDING record cannot be confirmed: nothing was issued.
	pending := transaction("int-1", "tx-pending")
	pending.Confirm = true
	_, err = s.ClaimTransaction(ctx, pending, t0)
	must(t, call("ClaimTransaction", "tx-pending", t0), err)
	wantErr(t, call("ConfirmTransaction", "int-1", "tx-pending"), s.ConfirmTransaction(ctx, "int-1", "tx-pending", pending.Claim), store.ErrConflict)
	wantErr(t, call("ConfirmTransaction", "int-1", "absent"), s.ConfirmTransaction(ctx, "int-1", "absent", "claim"), store.ErrNotFound)

	// Acknowledgement failed: the ISSUED record is released by its claim
	// holder (not by another), and the transaction can be claimed afresh.
	failed := transaction("int-1", "tx-unacknowledged")
	failed.Confirm = true
	_, err = s.ClaimTransaction(ctx, failed, t0)
	must(t, call("ClaimTransaction", "tx-unacknowledged", t0), err)
	c = certificate("C1")
	c.IntegrationID, c.TransactionID = failed.IntegrationID, failed.TransactionID
	must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))
	must(t, call("ReleaseTransaction", "int-1", "tx-unacknowledged", "stale"), s.ReleaseTransaction(ctx, "int-1", "tx-unacknowledged", "stale"))
	if got, err := s.GetTransaction(ctx, "int-1", "tx-unacknowledged"); err != nil || got.State != store.TxIssued {
		t.Errorf("GetTransaction(%q, %q) after a release by another claim = %v, %v, want it kept ISSUED", "int-1", "tx-unacknowledged", got, err)
	}
	must(t, call("ReleaseTransaction", "int-1", "tx-unacknowledged"), s.ReleaseTransaction(ctx, "int-1", "tx-unacknowledged", failed.Claim))
	_, err = s.GetTransaction(ctx, "int-1", "tx-unacknowledged")
	wantErr(t, call("GetTransaction", "int-1", "tx-unacknowledged")+" after release", err, store.ErrNotFound)
	retry := transaction("int-1", "tx-unacknowledged")
	retry.Claim = "claim-retry"
	existing, err = s.ClaimTransaction(ctx, retry, t0.Add(time.Second))
	if existing != nil || err != nil {
		t.Errorf("%s after release = %v, %v, want nil, nil", call("ClaimTransaction", "tx-unacknowledged", t0.Add(time.Second)), existing, err)
	}
	// The certificate stays recorded: revoking it is the caller's job.
	if _, err := s.GetCertificate(ctx, "C1"); err != nil {
		t.Errorf("GetCertificate(%q) after release = %v, want nil", "C1", err)
	}
}

// testIntegrationIntuneFields: the Intune fields of an integration round-trip
// byte for byte, the sealed secret included.
func testIntegrationIntuneFields(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := integration("int-intune")
	in.ChallengeType = store.ChallengeIntune
	in.SecretHash = nil
	in.IntuneTenant = "contoso.onmicrosoft.com"
	in.IntuneClientID = "6f1b2c3d-0000-4000-8000-00000000000a"
	in.IntuneSecretCiphertext = []byte{1, 0, 0xff, 0x80, 'x'}
	in.IntuneAuthorityURL = "https://login.microsoftonline.us"
	in.IntuneGraphURL = "https://graph.microsoft.us"
	must(t, call("CreateIntegration", in.ID), s.CreateIntegration(ctx, in))
	got, err := s.GetIntegration(ctx, in.ID)
	must(t, call("GetIntegration", in.ID), err)
	wantDiff(t, call("GetIntegration", in.ID), in, got)

	in.IntuneSecretCiphertext = []byte("rotated")
	in.IntuneTenant = "0d9e8f7a-1111-4222-8333-444455556666"
	must(t, call("UpdateIntegration", in.ID), s.UpdateIntegration(ctx, in))
	got, err = s.GetIntegration(ctx, in.ID)
	must(t, call("GetIntegration", in.ID), err)
	wantDiff(t, call("GetIntegration", in.ID)+" after update", in, got)
}
