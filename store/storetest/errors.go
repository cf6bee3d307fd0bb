package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

// testNotFound: every lookup of an absent record, and every update or
// delete of one, reports store.ErrNotFound. The contract spells this out for
// UpdateIntegration and UpdateCertificateStatus; for UpdateCA and
// DeleteIntegration the suite reads ErrNotFound's own definition ("the record
// does not exist") the same way, so the admin API can answer 404 alike.
func testNotFound(t *testing.T, s store.Store) {
	tests := []struct {
		call string
		fn   func(ctx context.Context) error
	}{
		{call("GetIntegration", "absent"), func(ctx context.Context) error { _, err := s.GetIntegration(ctx, "absent"); return err }},
		{call("UpdateIntegration", "absent"), func(ctx context.Context) error { return s.UpdateIntegration(ctx, integration("absent")) }},
		{call("DeleteIntegration", "absent"), func(ctx context.Context) error { return s.DeleteIntegration(ctx, "absent") }},
		{call("GetCA", "absent"), func(ctx context.Context) error { _, err := s.GetCA(ctx, "absent"); return err }},
		{call("UpdateCA", "absent"), func(ctx context.Context) error { return s.UpdateCA(ctx, caRecord("absent")) }},
		{call("GetCertificate", "ABSENT"), func(ctx context.Context) error { _, err := s.GetCertificate(ctx, "ABSENT"); return err }},
		{call("UpdateCertificateStatus", "ABSENT"), func(ctx context.Context) error {
			return s.UpdateCertificateStatus(ctx, "ABSENT", store.CertRevoked, t0, 0)
		}},
		{call("GetTransaction", "int-1", "absent"), func(ctx context.Context) error {
			_, err := s.GetTransaction(ctx, "int-1", "absent")
			return err
		}},
		{call("ConfirmTransaction", "int-1", "absent"), func(ctx context.Context) error {
			return s.ConfirmTransaction(ctx, "int-1", "absent", "claim")
		}},
		{call("GetOneTime", store.KindChallenge, "absent"), func(ctx context.Context) error {
			_, err := s.GetOneTime(ctx, store.KindChallenge, "absent")
			return err
		}},
		{call("GetOneTime", store.KindNonce, "absent"), func(ctx context.Context) error {
			_, err := s.GetOneTime(ctx, store.KindNonce, "absent")
			return err
		}},
		{call("ConsumeOneTime", store.KindChallenge, "absent"), func(ctx context.Context) error {
			_, err := s.ConsumeOneTime(ctx, store.KindChallenge, "absent", t0)
			return err
		}},
		{call("ConsumeOneTime", store.KindNonce, "absent"), func(ctx context.Context) error {
			_, err := s.ConsumeOneTime(ctx, store.KindNonce, "absent", t0)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.call, func(t *testing.T) {
			t.Parallel()
			wantErr(t, tc.call, tc.fn(t.Context()), store.ErrNotFound)
		})
	}
}

// snapshot is everything testCanceledContext's calls could have changed.
type snapshot struct {
	Integrations []*store.Integration
	CAs          []*store.CA
	Certificates []*store.Certificate
	Transactions []*store.Transaction
	OneTime      []*store.OneTime
}

func takeSnapshot(t *testing.T, s store.Store) snapshot {
	t.Helper()
	ctx := t.Context()
	var snap snapshot
	var err error
	snap.Integrations, err = s.ListIntegrations(ctx)
	must(t, call("ListIntegrations"), err)
	slices.SortFunc(snap.Integrations, byIntegrationID)
	snap.CAs, err = s.ListCAs(ctx)
	must(t, call("ListCAs"), err)
	slices.SortFunc(snap.CAs, byCAID)
	snap.Certificates, err = s.ListCertificates(ctx, store.CertFilter{})
	must(t, call("ListCertificates", store.CertFilter{}), err)
	slices.SortFunc(snap.Certificates, bySerial)
	for _, id := range []string{"tx-seed", "tx-new"} {
		tx, err := s.GetTransaction(ctx, "int-seed", id)
		if err == nil {
			snap.Transactions = append(snap.Transactions, tx)
		} else {
			wantErr(t, call("GetTransaction", "int-seed", id), err, store.ErrNotFound)
		}
	}
	for _, key := range []string{"seed", "new"} {
		v, err := s.GetOneTime(ctx, store.KindChallenge, key)
		if err == nil {
			snap.OneTime = append(snap.OneTime, v)
		} else {
			wantErr(t, call("GetOneTime", store.KindChallenge, key), err, store.ErrNotFound)
		}
	}
	return snap
}

// testCanceledContext: with a canceled context every call fails with an
// error wrapping context.Canceled and changes nothing, although each would
// succeed (and most would write) with a live one.
func testCanceledContext(t *testing.T, s store.Store) {
	live := t.Context()
	must(t, call("CreateIntegration", "int-seed"), s.CreateIntegration(live, integration("int-seed")))
	must(t, call("CreateCA", "ca-seed"), s.CreateCA(live, caRecord("ca-seed")))
	must(t, call("PutCertificate", "5EED"), s.PutCertificate(live, certificate("5EED")))
	_, err := s.ClaimTransaction(live, transaction("int-seed", "tx-seed"), t0)
	must(t, call("ClaimTransaction", "tx-seed", t0), err)
	must(t, call("PutOneTime", store.KindChallenge, "seed"), s.PutOneTime(live, store.KindChallenge, oneTime("seed", "int-seed", t0.Add(time.Hour))))
	before := takeSnapshot(t, s)

	ctx, cancel := context.WithCancel(live)
	cancel()
	later := t0.Add(365 * 24 * time.Hour)
	changed := func(c *store.CA) *store.CA { c.Active = false; return c }
	renamed := integration("int-seed")
	renamed.Name = "renamed"
	newCert := certificate("0E")
	newCert.IntegrationID, newCert.TransactionID = "int-seed", "tx-seed"

	tests := []struct {
		call string
		fn   func() error
	}{
		{call("CreateIntegration", "int-new"), func() error { return s.CreateIntegration(ctx, integration("int-new")) }},
		{call("UpdateIntegration", "int-seed"), func() error { return s.UpdateIntegration(ctx, renamed) }},
		{call("GetIntegration", "int-seed"), func() error { _, err := s.GetIntegration(ctx, "int-seed"); return err }},
		{call("ListIntegrations"), func() error { _, err := s.ListIntegrations(ctx); return err }},
		{call("DeleteIntegration", "int-seed"), func() error { return s.DeleteIntegration(ctx, "int-seed") }},
		{call("CreateCA", "ca-new"), func() error { return s.CreateCA(ctx, caRecord("ca-new")) }},
		{call("UpdateCA", "ca-seed"), func() error { return s.UpdateCA(ctx, changed(caRecord("ca-seed"))) }},
		{call("GetCA", "ca-seed"), func() error { _, err := s.GetCA(ctx, "ca-seed"); return err }},
		{call("ListCAs"), func() error { _, err := s.ListCAs(ctx); return err }},
		{call("PutCertificate", "0E"), func() error { return s.PutCertificate(ctx, newCert) }},
		{call("GetCertificate", "5EED"), func() error { _, err := s.GetCertificate(ctx, "5EED"); return err }},
		{call("ListCertificates", store.CertFilter{}), func() error { _, err := s.ListCertificates(ctx, store.CertFilter{}); return err }},
		{call("UpdateCertificateStatus", "5EED"), func() error {
			return s.UpdateCertificateStatus(ctx, "5EED", store.CertRevoked, t0, 1)
		}},
		{call("CountCertificates"), func() error { _, err := s.CountCertificates(ctx); return err }},
		{call("ClaimTransaction", "tx-new", t0), func() error {
			_, err := s.ClaimTransaction(ctx, transaction("int-seed", "tx-new"), t0)
			return err
		}},
		{call("GetTransaction", "int-seed", "tx-seed"), func() error {
			_, err := s.GetTransaction(ctx, "int-seed", "tx-seed")
			return err
		}},
		{call("ReleaseTransaction", "int-seed", "tx-seed"), func() error { return s.ReleaseTransaction(ctx, "int-seed", "tx-seed", "claim-tx-seed") }},
		{call("ConfirmTransaction", "int-seed", "tx-seed"), func() error { return s.ConfirmTransaction(ctx, "int-seed", "tx-seed", "claim-tx-seed") }},
		{call("SweepTransactions", later), func() error { _, err := s.SweepTransactions(ctx, later); return err }},
		{call("PutOneTime", store.KindChallenge, "new"), func() error {
			return s.PutOneTime(ctx, store.KindChallenge, oneTime("new", "int-seed", t0.Add(time.Hour)))
		}},
		{call("ConsumeOneTime", store.KindChallenge, "seed", t0), func() error {
			_, err := s.ConsumeOneTime(ctx, store.KindChallenge, "seed", t0)
			return err
		}},
		{call("RedeemOneTime", store.KindChallenge, "seed", t0), func() error {
			_, err := s.RedeemOneTime(ctx, store.KindChallenge, "seed", []byte("tx"), t0)
			return err
		}},
		{call("GetOneTime", store.KindChallenge, "seed"), func() error {
			_, err := s.GetOneTime(ctx, store.KindChallenge, "seed")
			return err
		}},
		{call("CountOneTime", store.KindChallenge, "int-seed", t0), func() error {
			_, err := s.CountOneTime(ctx, store.KindChallenge, "int-seed", t0)
			return err
		}},
		{call("SweepOneTime", store.KindChallenge, later), func() error {
			_, err := s.SweepOneTime(ctx, store.KindChallenge, later)
			return err
		}},
	}
	for _, tc := range tests {
		wantErr(t, tc.call+" with a canceled context", tc.fn(), context.Canceled)
	}
	wantDiff(t, "store contents after canceled calls", before, takeSnapshot(t, s))
}
