package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// PENDING claims live in memory (claims), not in the bucket. bbolt admits
// one process per file (Open holds an exclusive lock), so a table in this
// process excludes concurrent claimants as surely as a durable record
// would, without a commit and its fsyncs. A transaction is written to the
// bucket only when it leaves PENDING: PutCertificate writes it, TxSuccess
// or TxIssued, in the certificate's own Update, so an enrollment costs one
// durable commit. After a crash the claims are gone: nothing was issued
// for a transaction that was still PENDING (its certificate would have been
// committed with its record), so a retry simply starts afresh instead of
// waiting out the dead claimant's lease.
//
// The bucket may still hold PENDING records written by an earlier version
// of this package. They keep their leases, and a claim in memory that took
// one over supersedes it.

// claims is the table of PENDING claims, by txKey. Whoever decides on a
// claim (ClaimTransaction, GetTransaction, SweepTransactions) holds mu while
// it also reads the bucket, and PutCertificate drops a claim only after the
// commit that completes it, so a transaction is always found in one place
// or the other.
type claims struct {
	mu sync.Mutex
	m  map[string]*claim
}

// claim is one PENDING claim: the record as the bucket would hold it, so
// that callers get exactly what a stored claim would give them, and the
// fields the table itself checks.
type claim struct {
	data       []byte // the JSON record, as put would store it
	token      string // store.Transaction.Claim
	leaseUntil time.Time
	expiresAt  time.Time
}

func newClaim(t *store.Transaction) (*claim, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	// Round(0) drops a monotonic reading, which a stored record has not either.
	return &claim{data: data, token: t.Claim, leaseUntil: t.LeaseUntil.Round(0), expiresAt: t.ExpiresAt.Round(0)}, nil
}

// record decodes a fresh copy of the claimed record.
func (c *claim) record() (*store.Transaction, error) {
	t := new(store.Transaction)
	if err := json.Unmarshal(c.data, t); err != nil {
		return nil, fmt.Errorf("decode claim: %w", err)
	}
	return t, nil
}

// get returns the claim under key, or nil.
func (cs *claims) get(key []byte) *claim {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.m[string(key)]
}

// drop removes the claim under key if it is still c: another claimant may
// have taken the transaction over meanwhile.
func (cs *claims) drop(key []byte, c *claim) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.m[string(key)] == c {
		delete(cs.m, string(key))
	}
}

// lookup returns the transaction under key as claimants see it, or nil: a
// stored record past PENDING, else the claim in memory, else a stored
// PENDING record (an earlier version's). A claim in memory is newer than
// a stored PENDING record, which it can only have taken over; a stored
// record past PENDING is newer than a claim, which PutCertificate drops
// just after committing it. db.claims.mu must be held.
func (db *DB) lookup(key []byte) (*store.Transaction, error) {
	var stored *store.Transaction
	err := db.bdb.View(func(tx *bbolt.Tx) error {
		t := new(store.Transaction)
		switch err := get(tx.Bucket(bucketTransactions), key, t); {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		stored = t
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case stored != nil && stored.State != store.TxPending:
		return stored, nil
	}
	if c := db.claims.m[string(key)]; c != nil {
		return c.record()
	}
	return stored, nil
}

// ClaimTransaction claims tx as store.TxPending when no record has its key,
// or when the existing one is store.TxPending with LeaseUntil <= now (its
// claimant is presumed dead). It returns (nil, nil) when the caller owns the
// transaction, else the existing record and an error wrapping
// store.ErrExists. The claim is kept in memory (see claims); the check and
// the claim happen under one mutex, so among concurrent claimants exactly
// one wins. tx itself is not modified.
func (db *DB) ClaimTransaction(ctx context.Context, tx *store.Transaction, now time.Time) (*store.Transaction, error) {
	key, ok := txKey(tx.IntegrationID, tx.TransactionID)
	if !ok {
		return nil, fmt.Errorf("bolt: claim transaction %s %q: integration id contains NUL", tx.IntegrationID, tx.TransactionID)
	}
	rec := *tx
	rec.State = store.TxPending
	rec.Serial = ""
	existing, err := db.claim(ctx, key, &rec, now)
	if err != nil {
		return existing, fmt.Errorf("bolt: claim transaction %s %q: %w", tx.IntegrationID, tx.TransactionID, err)
	}
	return nil, nil
}

func (db *DB) claim(ctx context.Context, key []byte, rec *store.Transaction, now time.Time) (*store.Transaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := newClaim(rec)
	if err != nil {
		return nil, err
	}
	db.claims.mu.Lock()
	defer db.claims.mu.Unlock()
	cur, err := db.lookup(key)
	switch {
	case err != nil:
		return nil, err
	case cur != nil && (cur.State != store.TxPending || cur.LeaseUntil.After(now)):
		return cur, store.ErrExists
	}
	// No record, or the lease ran out: take the transaction over.
	if db.claims.m == nil {
		db.claims.m = make(map[string]*claim)
	}
	db.claims.m[string(key)] = c
	return nil, nil
}

// GetTransaction returns the transaction (integrationID, transactionID),
// PENDING claims included; store.ErrNotFound if absent.
func (db *DB) GetTransaction(ctx context.Context, integrationID, transactionID string) (*store.Transaction, error) {
	t, err := db.getTransaction(ctx, integrationID, transactionID)
	if err != nil {
		return nil, fmt.Errorf("bolt: get transaction %s %q: %w", integrationID, transactionID, err)
	}
	return t, nil
}

func (db *DB) getTransaction(ctx context.Context, integrationID, transactionID string) (*store.Transaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key, ok := txKey(integrationID, transactionID)
	if !ok {
		return nil, store.ErrNotFound
	}
	db.claims.mu.Lock()
	defer db.claims.mu.Unlock()
	t, err := db.lookup(key)
	if err == nil && t == nil {
		err = store.ErrNotFound
	}
	return t, err
}

// ReleaseTransaction deletes the transaction if it is store.TxPending or
// store.TxIssued and held by claim, so a retry starts afresh. Records in
// other states or held by another claim are kept, and an absent record is
// not an error: either way there is nothing to release. Releasing a claim
// kept in memory writes nothing to disk.
func (db *DB) ReleaseTransaction(ctx context.Context, integrationID, transactionID, claim string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: release transaction %s %q: %w", integrationID, transactionID, err)
	}
	key, ok := txKey(integrationID, transactionID)
	if !ok {
		return nil
	}
	db.claims.mu.Lock()
	if c := db.claims.m[string(key)]; c != nil && c.token == claim {
		delete(db.claims.m, string(key))
	}
	db.claims.mu.Unlock()

	// A stored record: ISSUED (awaiting ConfirmTransaction), or an earlier
	// version's PENDING one. Look before taking the writer lock: a release
	// usually finds nothing stored.
	releasable := func(b *bbolt.Bucket) (bool, error) {
		var t store.Transaction
		switch err := get(b, key, &t); {
		case errors.Is(err, store.ErrNotFound):
			return false, nil
		case err != nil:
			return false, err
		}
		return (t.State == store.TxPending || t.State == store.TxIssued) && t.Claim == claim, nil
	}
	var found bool
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		found, err = releasable(tx.Bucket(bucketTransactions))
		return err
	})
	if err == nil && found {
		err = db.update(ctx, func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketTransactions)
			if ok, err := releasable(b); err != nil || !ok {
				return err
			}
			return b.Delete(key)
		})
	}
	if err != nil {
		return fmt.Errorf("bolt: release transaction %s %q: %w", integrationID, transactionID, err)
	}
	return nil
}

// ConfirmTransaction turns the store.TxIssued transaction held by claim into
// store.TxSuccess in one Update; store.ErrNotFound if absent,
// store.ErrConflict in any other state (a PENDING claim included) or under
// another claim.
func (db *DB) ConfirmTransaction(ctx context.Context, integrationID, transactionID, claim string) error {
	key, ok := txKey(integrationID, transactionID)
	err := db.update(ctx, func(tx *bbolt.Tx) error {
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
	if errors.Is(err, store.ErrNotFound) && ok && db.claims.get(key) != nil {
		err = fmt.Errorf("state %s: %w", store.TxPending, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("bolt: confirm transaction %s %q: %w", integrationID, transactionID, err)
	}
	return nil
}

// SweepTransactions deletes every transaction with ExpiresAt <= now, in any
// state, PENDING claims in memory included, and returns how many it
// deleted. A claim under a stored record past PENDING (a claimant that took
// over a transaction another one completed meanwhile) is dropped with it
// but not counted apart.
func (db *DB) SweepTransactions(ctx context.Context, now time.Time) (int, error) {
	db.claims.mu.Lock()
	defer db.claims.mu.Unlock()
	var (
		n        int
		shadowed map[string]bool
	)
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTransactions)
		shadowed = map[string]bool{}
		for k, c := range db.claims.m {
			if !c.expiresAt.After(now) && b.Get([]byte(k)) != nil {
				shadowed[k] = true
			}
		}
		var err error
		n, err = sweep(b, nil, func(v []byte) (time.Time, error) {
			var t store.Transaction
			err := json.Unmarshal(v, &t)
			return t.ExpiresAt, err
		}, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: sweep transactions: %w", err)
	}
	for k, c := range db.claims.m {
		if !c.expiresAt.After(now) {
			delete(db.claims.m, k)
			if !shadowed[k] {
				n++
			}
		}
	}
	return n, nil
}
