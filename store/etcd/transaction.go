package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scepca/scepca/store"
)

// Transactions live under famTransactions by integrationID + "\x00" +
// transactionID. Unlike store/bolt, a PENDING claim is a durable record
// here (see store.TransactionStore): a claim in one replica's memory would
// exclude no other replica. Each record carries a lease ending after its
// ExpiresAt (garbage collection; SweepTransactions decides expiry).

// txKey returns the key of (integrationID, transactionID); ok is false for
// an integration ID holding NUL, which no stored record can have.
// transactionID is opaque wire data and may hold any byte.
func (s *Store) txKey(integrationID, transactionID string) (key string, ok bool) {
	if !keyPart(integrationID) {
		return "", false
	}
	return s.prefix + famTransactions + integrationID + "\x00" + transactionID, true
}

// ClaimTransaction claims tx as store.TxPending when no record has its key
// (compare CreateRevision = 0), or when the existing one is store.TxPending
// with LeaseUntil <= now (compare its ModRevision: the claimant is presumed
// dead). It returns (nil, nil) when the caller owns the transaction, else
// the existing record and an error wrapping store.ErrExists. Among
// concurrent claimants, on every replica, exactly one wins. tx itself is
// not modified.
func (s *Store) ClaimTransaction(ctx context.Context, tx *store.Transaction, now time.Time) (*store.Transaction, error) {
	existing, err := s.claim(ctx, tx, now)
	if err != nil {
		return existing, fmt.Errorf("etcd: claim transaction %s %q: %w", tx.IntegrationID, tx.TransactionID, err)
	}
	return nil, nil
}

func (s *Store) claim(ctx context.Context, tx *store.Transaction, now time.Time) (*store.Transaction, error) {
	key, ok := s.txKey(tx.IntegrationID, tx.TransactionID)
	if !ok {
		return nil, fmt.Errorf("integration id contains NUL")
	}
	rec := *tx
	rec.State = store.TxPending
	rec.Serial = ""
	data, err := json.Marshal(&rec)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	var existing *store.Transaction
	err = s.retry(ctx, func() error {
		existing = nil
		lease, err := s.leaseFor(ctx, rec.ExpiresAt)
		if err != nil {
			return err
		}
		put := clientv3.OpPut(key, string(data), lease...)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(put).
			Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return errRetry // released meanwhile
		}
		cur := new(store.Transaction)
		if err := json.Unmarshal(kvs[0].Value, cur); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if cur.State != store.TxPending || cur.LeaseUntil.After(now) {
			existing = cur
			return store.ErrExists
		}
		// The lease ran out: take the transaction over, if nobody else
		// did first.
		resp, err = s.cli.Txn(ctx).If(modRev(key, kvs[0])).Then(put).Commit()
		switch {
		case err != nil:
			return err
		case !resp.Succeeded:
			return errRetry
		}
		return nil
	})
	return existing, err
}

// GetTransaction returns the transaction (integrationID, transactionID);
// store.ErrNotFound if absent.
func (s *Store) GetTransaction(ctx context.Context, integrationID, transactionID string) (*store.Transaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("etcd: get transaction %s %q: %w", integrationID, transactionID, err)
	}
	key, ok := s.txKey(integrationID, transactionID)
	if !ok {
		return nil, fmt.Errorf("etcd: get transaction %s %q: %w", integrationID, transactionID, store.ErrNotFound)
	}
	var t store.Transaction
	if _, err := s.getJSON(ctx, key, &t); err != nil {
		return nil, fmt.Errorf("etcd: get transaction %s %q: %w", integrationID, transactionID, err)
	}
	return &t, nil
}

// ReleaseTransaction deletes the transaction if it is store.TxPending or
// store.TxIssued and held by claim, compared against the record it read,
// so a retry starts afresh. Records in other states or held by another
// claim are kept; an absent record is not an error.
func (s *Store) ReleaseTransaction(ctx context.Context, integrationID, transactionID, claim string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("etcd: release transaction %s %q: %w", integrationID, transactionID, err)
	}
	key, ok := s.txKey(integrationID, transactionID)
	if !ok {
		return nil
	}
	err := s.retry(ctx, func() error {
		var t store.Transaction
		kv, err := s.getJSON(ctx, key, &t)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		case (t.State != store.TxPending && t.State != store.TxIssued) || t.Claim != claim:
			return nil
		}
		resp, err := s.cli.Txn(ctx).If(modRev(key, kv)).Then(clientv3.OpDelete(key)).Commit()
		switch {
		case err != nil:
			return err
		case !resp.Succeeded:
			return errRetry
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("etcd: release transaction %s %q: %w", integrationID, transactionID, err)
	}
	return nil
}

// ConfirmTransaction turns the store.TxIssued transaction held by claim
// into store.TxSuccess, compared against the record it read;
// store.ErrNotFound if absent, store.ErrConflict in any other state or
// under another claim.
func (s *Store) ConfirmTransaction(ctx context.Context, integrationID, transactionID, claim string) error {
	key, ok := s.txKey(integrationID, transactionID)
	err := s.retry(ctx, func() error {
		if !ok {
			return store.ErrNotFound
		}
		var t store.Transaction
		kv, err := s.getJSON(ctx, key, &t)
		if err != nil {
			return err
		}
		if t.State != store.TxIssued || t.Claim != claim {
			return fmt.Errorf("state %s: %w", t.State, store.ErrConflict)
		}
		t.State = store.TxSuccess
		op, err := putJSON(key, &t, keepLease(kv)...)
		if err != nil {
			return err
		}
		resp, err := s.cli.Txn(ctx).If(modRev(key, kv)).Then(op).Commit()
		switch {
		case err != nil:
			return err
		case !resp.Succeeded:
			return errRetry
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("etcd: confirm transaction %s %q: %w", integrationID, transactionID, err)
	}
	return nil
}

// SweepTransactions deletes every transaction with ExpiresAt <= now, in
// any state, and returns how many it deleted.
func (s *Store) SweepTransactions(ctx context.Context, now time.Time) (int, error) {
	n, err := s.sweep(ctx, s.prefix+famTransactions, func(v []byte) (time.Time, error) {
		var t store.Transaction
		err := json.Unmarshal(v, &t)
		return t.ExpiresAt, err
	}, now)
	if err != nil {
		return n, fmt.Errorf("etcd: sweep transactions: %w", err)
	}
	return n, nil
}
