package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

func testClaimFirstWins(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := transaction("int-1", "tx-1")
	existing, err := s.ClaimTransaction(ctx, first, t0)
	if existing != nil || err != nil {
		t.Fatalf("%s = %v, %v, want nil, nil", call("ClaimTransaction", "tx-1", t0), existing, err)
	}
	got, err := s.GetTransaction(ctx, "int-1", "tx-1")
	must(t, call("GetTransaction", "int-1", "tx-1"), err)
	wantDiff(t, call("GetTransaction", "int-1", "tx-1"), transaction("int-1", "tx-1"), got)

	// A second claimant inside the lease (another key, say) gets the first record.
	second := transaction("int-1", "tx-1")
	second.PublicKeyHash = []byte("another key")
	now := t0.Add(30 * time.Second)
	existing, err = s.ClaimTransaction(ctx, second, now)
	wantErr(t, call("ClaimTransaction", "tx-1", now)+" again", err, store.ErrExists)
	wantDiff(t, call("ClaimTransaction", "tx-1", now)+" existing record", transaction("int-1", "tx-1"), existing)
	got, err = s.GetTransaction(ctx, "int-1", "tx-1")
	must(t, call("GetTransaction", "int-1", "tx-1"), err)
	wantDiff(t, call("GetTransaction", "int-1", "tx-1")+" after a lost claim", transaction("int-1", "tx-1"), got)

	// The key is (integration, transactionID): another integration's
	// transaction with the same ID is a different transaction.
	other := transaction("int-2", "tx-1")
	existing, err = s.ClaimTransaction(ctx, other, now)
	if existing != nil || err != nil {
		t.Errorf("%s for another integration = %v, %v, want nil, nil", call("ClaimTransaction", "tx-1", now), existing, err)
	}
}

func testClaimExpiredLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := transaction("int-1", "tx-1") // leased until t0+1m
	_, err := s.ClaimTransaction(ctx, first, t0)
	must(t, call("ClaimTransaction", "tx-1", t0), err)

	second := transaction("int-1", "tx-1")
	second.PublicKeyHash = []byte("second claimant")
	second.CreatedAt = first.LeaseUntil
	second.LeaseUntil = first.LeaseUntil.Add(time.Minute)

	justBefore := first.LeaseUntil.Add(-time.Nanosecond)
	existing, err := s.ClaimTransaction(ctx, second, justBefore)
	wantErr(t, call("ClaimTransaction", "tx-1", justBefore)+" inside the lease", err, store.ErrExists)
	wantDiff(t, call("ClaimTransaction", "tx-1", justBefore)+" existing record", first, existing)

	// LeaseUntil <= now: the first claimant is presumed dead.
	existing, err = s.ClaimTransaction(ctx, second, first.LeaseUntil)
	if existing != nil || err != nil {
		t.Fatalf("%s at the lease's end = %v, %v, want nil, nil", call("ClaimTransaction", "tx-1", first.LeaseUntil), existing, err)
	}
	got, err := s.GetTransaction(ctx, "int-1", "tx-1")
	must(t, call("GetTransaction", "int-1", "tx-1"), err)
	wantDiff(t, call("GetTransaction", "int-1", "tx-1")+" after the takeover", second, got)

	// The new lease holds like the first one did.
	third := transaction("int-1", "tx-1")
	third.PublicKeyHash = []byte("third claimant")
	third.LeaseUntil = second.LeaseUntil.Add(time.Minute)
	existing, err = s.ClaimTransaction(ctx, third, first.LeaseUntil)
	wantErr(t, call("ClaimTransaction", "tx-1", first.LeaseUntil)+" inside the new lease", err, store.ErrExists)
	wantDiff(t, call("ClaimTransaction", "tx-1", first.LeaseUntil)+" existing record", second, existing)
}

func testClaimSuccessNeverTakenOver(t *testing.T, s store.Store) {
	ctx := t.Context()
	tx := transaction("int-1", "tx-1")
	_, err := s.ClaimTransaction(ctx, tx, t0)
	must(t, call("ClaimTransaction", "tx-1", t0), err)
	c := certificate("AB")
	c.IntegrationID, c.TransactionID = tx.IntegrationID, tx.TransactionID
	must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))

	want := transaction("int-1", "tx-1")
	want.State, want.Serial = store.TxSuccess, "AB"
	// Long after the lease, and even after ExpiresAt while not yet swept.
	for _, now := range []time.Time{tx.LeaseUntil, tx.LeaseUntil.Add(time.Hour), tx.ExpiresAt.Add(time.Hour)} {
		retry := transaction("int-1", "tx-1")
		retry.LeaseUntil = now.Add(time.Minute)
		existing, err := s.ClaimTransaction(ctx, retry, now)
		wantErr(t, call("ClaimTransaction", "tx-1", now)+" after SUCCESS", err, store.ErrExists)
		wantDiff(t, call("ClaimTransaction", "tx-1", now)+" existing record", want, existing, ignoreLease)
	}
	got, err := s.GetTransaction(ctx, "int-1", "tx-1")
	must(t, call("GetTransaction", "int-1", "tx-1"), err)
	wantDiff(t, call("GetTransaction", "int-1", "tx-1")+" after refused claims", want, got, ignoreLease)
}

// testClaimConcurrent: of many identical requests racing, exactly one
// issues and every other one sees the winner's record. The goroutines race
// over several transactions in turn, which gives a check-then-write gap many
// chances to show.
func testClaimConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n, keys = 50, 10
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		existing [keys][n]*store.Transaction
		errs     [keys][n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			for k := range keys {
				tx := transaction("int-1", fmt.Sprintf("tx-race-%d", k))
				tx.PublicKeyHash = []byte{byte(i)} //nolint:gosec // G115: i < n = 50
				existing[k][i], errs[k][i] = s.ClaimTransaction(ctx, tx, t0)
			}
		})
	}
	close(start)
	wg.Wait()

	for k := range keys {
		id := fmt.Sprintf("tx-race-%d", k)
		c := call("ClaimTransaction", id, t0)
		var winners []int
		for i := range n {
			switch {
			case existing[k][i] == nil && errs[k][i] == nil:
				winners = append(winners, i)
			case existing[k][i] != nil && errors.Is(errs[k][i], store.ErrExists):
			default:
				t.Errorf("claimant %d: %s = %v, %v, want nil, nil or the existing record and %v", i, c, existing[k][i], errs[k][i], store.ErrExists)
			}
		}
		if len(winners) != 1 {
			t.Errorf("%d concurrent %s: %d winners %v, want exactly 1", n, c, len(winners), winners)
			continue
		}
		winnerKey := []byte{byte(winners[0])} //nolint:gosec // G115: a claimant index, < n = 50
		for i, e := range existing[k] {
			if e != nil && !bytes.Equal(e.PublicKeyHash, winnerKey) {
				t.Errorf("claimant %d: %s saw PublicKeyHash %x, want the winner's %x", i, c, e.PublicKeyHash, winnerKey)
			}
		}
		got, err := s.GetTransaction(ctx, "int-1", id)
		must(t, call("GetTransaction", "int-1", id), err)
		if !bytes.Equal(got.PublicKeyHash, winnerKey) || got.State != store.TxPending {
			t.Errorf("GetTransaction(%q, %q) = %s %x, want %s and the winner's %x", "int-1", id, got.State, got.PublicKeyHash, store.TxPending, winnerKey)
		}
	}
}

func testReleaseTransaction(t *testing.T, s store.Store) {
	ctx := t.Context()

	// A failed attempt releases its PENDING claim, and a retry starts afresh
	// inside what was the lease.
	pending := transaction("int-1", "tx-failed")
	_, err := s.ClaimTransaction(ctx, pending, t0)
	must(t, call("ClaimTransaction", "tx-failed", t0), err)
	// A stale claimant (its lease ran out and another took over) cannot
	// release a claim that is not its own.
	must(t, call("ReleaseTransaction", "int-1", "tx-failed", "stale"), s.ReleaseTransaction(ctx, "int-1", "tx-failed", "stale"))
	if _, err := s.GetTransaction(ctx, "int-1", "tx-failed"); err != nil {
		t.Errorf("GetTransaction(%q, %q) after a release by another claim = %v, want the record kept", "int-1", "tx-failed", err)
	}
	must(t, call("ReleaseTransaction", "int-1", "tx-failed"), s.ReleaseTransaction(ctx, "int-1", "tx-failed", pending.Claim))
	_, err = s.GetTransaction(ctx, "int-1", "tx-failed")
	wantErr(t, call("GetTransaction", "int-1", "tx-failed")+" after release", err, store.ErrNotFound)
	retry := transaction("int-1", "tx-failed")
	retry.PublicKeyHash = []byte("retry")
	retry.Claim = "claim-retry"
	now := t0.Add(time.Second)
	existing, err := s.ClaimTransaction(ctx, retry, now)
	if existing != nil || err != nil {
		t.Errorf("%s after release = %v, %v, want nil, nil", call("ClaimTransaction", "tx-failed", now), existing, err)
	}

	// A SUCCESS record is kept, and keeping it is not an error: the release
	// is a no-op, as for any state but PENDING.
	done := transaction("int-1", "tx-done")
	_, err = s.ClaimTransaction(ctx, done, t0)
	must(t, call("ClaimTransaction", "tx-done", t0), err)
	c := certificate("D0")
	c.IntegrationID, c.TransactionID = done.IntegrationID, done.TransactionID
	must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))
	must(t, call("ReleaseTransaction", "int-1", "tx-done"), s.ReleaseTransaction(ctx, "int-1", "tx-done", done.Claim))
	got, err := s.GetTransaction(ctx, "int-1", "tx-done")
	must(t, call("GetTransaction", "int-1", "tx-done")+" after releasing a SUCCESS record", err)
	if got.State != store.TxSuccess || got.Serial != "D0" {
		t.Errorf("GetTransaction(%q, %q) = %s %q, want %s %q", "int-1", "tx-done", got.State, got.Serial, store.TxSuccess, "D0")
	}

	// Releasing one integration's transaction leaves another's alone.
	other := transaction("int-2", "tx-failed")
	_, err = s.ClaimTransaction(ctx, other, t0)
	must(t, call("ClaimTransaction", "tx-failed", t0), err)
	must(t, call("ReleaseTransaction", "int-1", "tx-failed"), s.ReleaseTransaction(ctx, "int-1", "tx-failed", retry.Claim))
	if _, err := s.GetTransaction(ctx, "int-2", "tx-failed"); err != nil {
		t.Errorf("GetTransaction(%q, %q) after releasing int-1's = %v, want nil", "int-2", "tx-failed", err)
	}
}

func testSweepTransactions(t *testing.T, s store.Store) {
	ctx := t.Context()
	expiring := map[string]time.Time{
		"tx-1h": t0.Add(time.Hour),
		"tx-2h": t0.Add(2 * time.Hour), // completed below: SUCCESS is swept too
		"tx-3h": t0.Add(3 * time.Hour),
	}
	for id, exp := range expiring {
		tx := transaction("int-1", id)
		tx.ExpiresAt = exp
		_, err := s.ClaimTransaction(ctx, tx, t0)
		must(t, call("ClaimTransaction", id, t0), err)
	}
	c := certificate("C2")
	c.TransactionID = "tx-2h"
	must(t, call("PutCertificate", c.Serial), s.PutCertificate(ctx, c))

	sweep := func(now time.Time, want int) {
		t.Helper()
		n, err := s.SweepTransactions(ctx, now)
		if err != nil || n != want {
			t.Errorf("SweepTransactions(%v) = %d, %v, want %d, nil", now, n, err, want)
		}
	}
	sweep(t0.Add(30*time.Minute), 0)
	sweep(t0.Add(2*time.Hour), 2) // ExpiresAt <= now
	for _, id := range []string{"tx-1h", "tx-2h"} {
		_, err := s.GetTransaction(ctx, "int-1", id)
		wantErr(t, call("GetTransaction", "int-1", id)+" after sweep", err, store.ErrNotFound)
	}
	if _, err := s.GetTransaction(ctx, "int-1", "tx-3h"); err != nil {
		t.Errorf("GetTransaction(%q, %q) after sweep = %v, want nil", "int-1", "tx-3h", err)
	}
	sweep(t0.Add(2*time.Hour), 0)
	sweep(t0.Add(3*time.Hour), 1)
	if _, err := s.GetCertificate(ctx, "C2"); err != nil {
		t.Errorf("GetCertificate(%q) after sweeping its transaction = %v, want nil", "C2", err)
	}
}
