package bolt_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// PENDING claims live in the process's memory; a transaction reaches the
// file only when PutCertificate completes it (transaction.go).

var claimT0 = time.Date(2035, time.March, 1, 12, 0, 0, 0, time.UTC)

func claimTx(id string) *store.Transaction {
	return &store.Transaction{
		IntegrationID: "int-1", TransactionID: id, PublicKeyHash: []byte("spki-" + id),
		State: store.TxPending, CreatedAt: claimT0, LeaseUntil: claimT0.Add(2 * time.Minute),
		ExpiresAt: claimT0.Add(24 * time.Hour), Claim: "claim-" + id,
	}
}

func claimCert(serial string, tx *store.Transaction) *store.Certificate {
	return &store.Certificate{
		Serial: serial, IntegrationID: tx.IntegrationID, TransactionID: tx.TransactionID,
		IssuedAt: claimT0, DER: []byte("der-" + serial), Status: store.CertIssued,
	}
}

// TestClaimAfterRestart: after the process ends (Close, or a crash), a
// transaction that was still PENDING is gone and may be claimed again at
// once, inside what was its lease; completed ones (SUCCESS, and ISSUED
// awaiting acknowledgement) were committed with their certificate and stay.
func TestClaimAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "scepca.db")
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pending, done, issued := claimTx("tx-pending"), claimTx("tx-done"), claimTx("tx-issued")
	issued.Confirm = true
	for _, tx := range []*store.Transaction{pending, done, issued} {
		if _, err := db.ClaimTransaction(ctx, tx, claimT0); err != nil {
			t.Fatalf("ClaimTransaction(%q) = %v, want nil", tx.TransactionID, err)
		}
	}
	for serial, tx := range map[string]*store.Transaction{"D0": done, "15": issued} {
		if err := db.PutCertificate(ctx, claimCert(serial, tx)); err != nil {
			t.Fatalf("PutCertificate(%q) = %v, want nil", serial, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path)
	now := claimT0.Add(time.Minute) // inside every lease
	if _, err := db.GetTransaction(ctx, "int-1", "tx-pending"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTransaction(%q) after reopen = %v, want %v", "tx-pending", err, store.ErrNotFound)
	}
	retry := claimTx("tx-pending")
	retry.Claim = "claim-retry"
	if existing, err := db.ClaimTransaction(ctx, retry, now); existing != nil || err != nil {
		t.Errorf("ClaimTransaction(%q) after reopen = %v, %v, want nil, nil", "tx-pending", existing, err)
	}
	for id, want := range map[string]string{"tx-done": store.TxSuccess, "tx-issued": store.TxIssued} {
		existing, err := db.ClaimTransaction(ctx, claimTx(id), now)
		if !errors.Is(err, store.ErrExists) || existing == nil || existing.State != want {
			t.Errorf("ClaimTransaction(%q) after reopen = %+v, %v, want the %s record and %v", id, existing, err, want, store.ErrExists)
		}
	}
	if err := db.ConfirmTransaction(ctx, "int-1", "tx-issued", issued.Claim); err != nil {
		t.Errorf("ConfirmTransaction(%q) after reopen = %v, want nil", "tx-issued", err)
	}
}

// TestClaimOverStoredPending: a PENDING record stored in the file by an
// earlier version keeps its lease; a claim taking it over afterwards is
// the one PutCertificate completes, and the one ReleaseTransaction drops.
func TestClaimOverStoredPending(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "scepca.db")
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	old := claimTx("tx-old")
	old.Claim = "claim-dead"
	storePending(t, path, old)

	db = open(t, path)
	inside := old.LeaseUntil.Add(-time.Second)
	taker := claimTx("tx-old")
	taker.Claim = "claim-taker"
	taker.LeaseUntil = old.LeaseUntil.Add(2 * time.Minute)
	if existing, err := db.ClaimTransaction(ctx, taker, inside); !errors.Is(err, store.ErrExists) || existing == nil || existing.Claim != old.Claim {
		t.Fatalf("ClaimTransaction inside the stored lease = %+v, %v, want the stored record and %v", existing, err, store.ErrExists)
	}
	if existing, err := db.ClaimTransaction(ctx, taker, old.LeaseUntil); existing != nil || err != nil {
		t.Fatalf("ClaimTransaction at the stored lease's end = %v, %v, want nil, nil", existing, err)
	}
	if got, err := db.GetTransaction(ctx, "int-1", "tx-old"); err != nil || got.Claim != taker.Claim {
		t.Errorf("GetTransaction after the takeover = %+v, %v, want the taker's claim", got, err)
	}

	// A release by the taker drops its claim; the stored record, held by
	// the dead claim, is kept (and may be taken over again).
	if err := db.ReleaseTransaction(ctx, "int-1", "tx-old", taker.Claim); err != nil {
		t.Fatal(err)
	}
	if got, err := db.GetTransaction(ctx, "int-1", "tx-old"); err != nil || got.Claim != old.Claim {
		t.Errorf("GetTransaction after the taker's release = %+v, %v, want the stored record", got, err)
	}
	if existing, err := db.ClaimTransaction(ctx, taker, old.LeaseUntil); existing != nil || err != nil {
		t.Fatalf("ClaimTransaction again = %v, %v, want nil, nil", existing, err)
	}
	if err := db.PutCertificate(ctx, claimCert("0D", taker)); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetTransaction(ctx, "int-1", "tx-old")
	if err != nil || got.State != store.TxSuccess || got.Serial != "0D" || got.Claim != taker.Claim {
		t.Errorf("GetTransaction after PutCertificate = %+v, %v, want SUCCESS 0D under the taker's claim", got, err)
	}
}

// storePending writes tx into the file at path as a stored PENDING record,
// as versions that kept claims durable did.
func storePending(t *testing.T, path string, tx *store.Transaction) {
	t.Helper()
	bdb, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	data, err := json.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(btx *bbolt.Tx) error {
		return btx.Bucket([]byte("transactions")).Put([]byte(tx.IntegrationID+"\x00"+tx.TransactionID), data)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestClaimRacesCompletion: claimants inside the lease race the
// PutCertificate that completes the claim. None may win, before, during or
// after the commit (the claim is dropped from memory only once the record
// is committed), and one that starts after PutCertificate returned finds
// the completed record.
func TestClaimRacesCompletion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "scepca.db"))
	const rounds, racers = 50, 8
	inside := claimT0.Add(time.Minute)
	for r := range rounds {
		id := fmt.Sprintf("tx-%d", r)
		tx := claimTx(id)
		if _, err := db.ClaimTransaction(ctx, tx, claimT0); err != nil {
			t.Fatal(err)
		}
		var (
			completed atomic.Bool
			wg        sync.WaitGroup
			start     = make(chan struct{})
		)
		for i := range racers {
			wg.Go(func() {
				<-start
				for range 20 {
					after := completed.Load()
					c := claimTx(id)
					c.Claim = fmt.Sprintf("racer-%d", i)
					existing, err := db.ClaimTransaction(ctx, c, inside)
					switch {
					case !errors.Is(err, store.ErrExists):
						t.Errorf("round %d: racer %d: ClaimTransaction inside the lease = %v, want %v", r, i, err, store.ErrExists)
					case existing.Claim != tx.Claim:
						t.Errorf("round %d: racer %d saw claim %q, want %q", r, i, existing.Claim, tx.Claim)
					case after && existing.State != store.TxSuccess:
						t.Errorf("round %d: ClaimTransaction after PutCertificate saw %s, want %s", r, existing.State, store.TxSuccess)
					}
				}
			})
		}
		close(start)
		if err := db.PutCertificate(ctx, claimCert(fmt.Sprintf("%X", r+1), tx)); err != nil {
			t.Fatal(err)
		}
		completed.Store(true)
		wg.Wait()
		if got, err := db.GetTransaction(ctx, "int-1", id); err != nil || got.State != store.TxSuccess {
			t.Errorf("GetTransaction(%q) = %+v, %v, want %s", id, got, err, store.TxSuccess)
		}
	}
}
