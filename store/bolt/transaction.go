package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// txKey is the transaction bucket key integrationID + "\x00" +
// transactionID. It is unambiguous because integration IDs never contain
// NUL; ok is false for one that does, which no stored record can have.
// transactionID is opaque wire data and may hold any byte.
func txKey(integrationID, transactionID string) (key []byte, ok bool) {
	if strings.IndexByte(integrationID, 0) >= 0 {
		return nil, false
	}
	return []byte(integrationID + "\x00" + transactionID), true
}

// ClaimTransaction stores tx as store.TxPending when no record has its key,
// or when the existing record is store.TxPending with LeaseUntil <= now (its
// claimant is presumed dead). It returns (nil, nil) when the caller owns the
// transaction, else the existing record and an error wrapping
// store.ErrExists. The check and the write are one Update, so among
// concurrent claimants exactly one wins. tx itself is not modified.
func (db *DB) ClaimTransaction(ctx context.Context, tx *store.Transaction, now time.Time) (*store.Transaction, error) {
	key, ok := txKey(tx.IntegrationID, tx.TransactionID)
	if !ok {
		return nil, fmt.Errorf("bolt: claim transaction %s %q: integration id contains NUL", tx.IntegrationID, tx.TransactionID)
	}
	claim := *tx
	claim.State = store.TxPending
	claim.Serial = ""
	var existing *store.Transaction
	err := db.update(ctx, func(btx *bbolt.Tx) error {
		b := btx.Bucket(bucketTransactions)
		var cur store.Transaction
		switch err := get(b, key, &cur); {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		case cur.State == store.TxPending && !cur.LeaseUntil.After(now):
			// The lease ran out: take the transaction over.
		default:
			existing = &cur
			return store.ErrExists
		}
		return put(b, key, &claim)
	})
	if err != nil {
		return existing, fmt.Errorf("bolt: claim transaction %s %q: %w", tx.IntegrationID, tx.TransactionID, err)
	}
	return nil, nil
}

// GetTransaction returns the transaction (integrationID, transactionID);
// store.ErrNotFound if absent.
func (db *DB) GetTransaction(ctx context.Context, integrationID, transactionID string) (*store.Transaction, error) {
	var t store.Transaction
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		key, ok := txKey(integrationID, transactionID)
		if !ok {
			return store.ErrNotFound
		}
		return get(tx.Bucket(bucketTransactions), key, &t)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get transaction %s %q: %w", integrationID, transactionID, err)
	}
	return &t, nil
}

// ReleaseTransaction deletes the transaction if it is store.TxPending or
// store.TxIssued and held by claim, so a retry starts afresh. Records in
// other states or held by another claim are kept, and an absent record is
// not an error: either way there is nothing to release.
func (db *DB) ReleaseTransaction(ctx context.Context, integrationID, transactionID, claim string) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		key, ok := txKey(integrationID, transactionID)
		if !ok {
			return nil
		}
		b := tx.Bucket(bucketTransactions)
		var t store.Transaction
		switch err := get(b, key, &t); {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		case t.State != store.TxPending && t.State != store.TxIssued, t.Claim != claim:
			return nil
		}
		return b.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("bolt: release transaction %s %q: %w", integrationID, transactionID, err)
	}
	return nil
}

// ConfirmTransaction turns the store.TxIssued transaction held by claim into
// store.TxSuccess in one Update; store.ErrNotFound if absent,
// store.ErrConflict in any other state or under another claim.
func (db *DB) ConfirmTransaction(ctx context.Context, integrationID, transactionID, claim string) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		key, ok := txKey(integrationID, transactionID)
		if !ok {
			return store.ErrNotFound
		}
		b := tx.Bucket(bucketTransactions)
		var t store.Transaction
		if err := get(b, key, &t); err != nil {
			return err
		}
		if t.State != store.TxIssued || t.Claim != claim {
			return fmt.Errorf("state %s: %w", t.State, store.ErrConflict)
		}
		t.State = store.TxSuccess
		return put(b, key, &t)
	})
	if err != nil {
		return fmt.Errorf("bolt: confirm transaction %s %q: %w", integrationID, transactionID, err)
	}
	return nil
}

// SweepTransactions deletes every transaction with ExpiresAt <= now, in any
// state, and returns how many it deleted.
func (db *DB) SweepTransactions(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		n, err = sweep(tx.Bucket(bucketTransactions), nil, func(v []byte) (time.Time, error) {
			var t store.Transaction
			err := json.Unmarshal(v, &t)
			return t.ExpiresAt, err
		}, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: sweep transactions: %w", err)
	}
	return n, nil
}
