package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// PutCertificate stores a newly issued certificate durably; store.ErrExists
// if any certificate already has its serial. When c.TransactionID names a
// claimed transaction of c.IntegrationID, that transaction is written as
// store.TxSuccess (store.TxIssued if claimed with Confirm) with this serial
// in the same Update, so a retry never sees a certificate without its
// transaction or the reverse; that commit is the transaction's first and
// only durable write (its PENDING claim was kept in memory, see claims),
// and it is shared with concurrent PutCertificate calls (batch): one
// commit, and its fsyncs, for every certificate issued meanwhile.
// A transaction that is already past store.TxPending keeps its first
// serial: retries keep getting the certificate they were first answered
// with. A serial clash writes nothing and keeps the claim.
func (db *DB) PutCertificate(ctx context.Context, c *store.Certificate) error {
	if c.Serial == "" {
		return fmt.Errorf("bolt: put certificate: empty serial")
	}
	// The claim this certificate completes, when it is in memory. It is
	// dropped only once the commit holding the record is durable, so a
	// claimant always finds the transaction in one place or the other.
	var (
		key  []byte
		held *claim
	)
	if c.TransactionID != "" {
		if k, ok := txKey(c.IntegrationID, c.TransactionID); ok {
			key, held = k, db.claims.get(k)
		}
	}
	err := db.batch(ctx, func(tx *bbolt.Tx) error {
		certs := tx.Bucket(bucketCerts)
		if certs.Get([]byte(c.Serial)) != nil {
			return store.ErrExists
		}
		if err := put(certs, []byte(c.Serial), c); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCertsByIssued).Put(issuedKey(c.IssuedAt, c.Serial), []byte{}); err != nil {
			return err
		}
		if key == nil {
			return nil
		}
		return completeTransaction(tx.Bucket(bucketTransactions), key, held, c)
	})
	if err != nil {
		return fmt.Errorf("bolt: put certificate %s: %w", c.Serial, err)
	}
	if held != nil {
		db.claims.drop(key, held)
	}
	return nil
}

// completeTransaction writes the transaction of c under key as
// store.TxSuccess with c's serial, or as store.TxIssued when it was claimed
// with Confirm (delivery awaits ConfirmTransaction): from held, the claim
// in memory, or else from a stored store.TxPending record (an earlier
// version's). A stored record past store.TxPending is kept as it is, and
// without a claim nothing is written. It derives everything from b and its
// arguments, so it may run more than once (batch).
func completeTransaction(b *bbolt.Bucket, key []byte, held *claim, c *store.Certificate) error {
	var t store.Transaction
	err := get(b, key, &t)
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("transaction %q: %w", c.TransactionID, err)
	case err == nil && t.State != store.TxPending:
		return nil
	case held != nil:
		// Newer than a stored PENDING record, which it took over.
		rec, err := held.record()
		if err != nil {
			return fmt.Errorf("transaction %q: %w", c.TransactionID, err)
		}
		t = *rec
	case err != nil:
		return nil // not claimed: create no transaction
	}
	t.State = store.TxSuccess
	if t.Confirm {
		t.State = store.TxIssued
	}
	t.Serial = c.Serial
	return put(b, key, &t)
}

// issuedKey orders the certificate index by IssuedAt, then serial: the sign
// bit of the Unix seconds is flipped so that big-endian byte order is
// numeric order for every time, the zero time included.
func issuedKey(at time.Time, serial string) []byte {
	k := make([]byte, 12, 12+len(serial))
	binary.BigEndian.PutUint64(k, uint64(at.Unix())^(1<<63))   //nolint:gosec // G115: reinterpreting the sign bit is the point, see above
	binary.BigEndian.PutUint32(k[8:], uint32(at.Nanosecond())) //nolint:gosec // G115: Nanosecond is in [0, 1e9)
	return append(k, serial...)
}

// GetCertificate returns the certificate serial; store.ErrNotFound if absent.
func (db *DB) GetCertificate(ctx context.Context, serial string) (*store.Certificate, error) {
	var c store.Certificate
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketCerts), []byte(serial), &c)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get certificate %s: %w", serial, err)
	}
	return &c, nil
}

// ListCertificates returns the certificates matching f, newest IssuedAt
// first (ties by serial, descending), at most f.Limit of them when
// f.Limit > 0, starting after f.After. It reads in one transaction, so the
// list is a snapshot.
func (db *DB) ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error) {
	var out []*store.Certificate
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		certs := tx.Bucket(bucketCerts)
		cur := tx.Bucket(bucketCertsByIssued).Cursor()
		k, _ := cur.Last()
		if f.After != "" {
			var last store.Certificate
			if err := get(certs, []byte(f.After), &last); err != nil {
				return fmt.Errorf("cursor %s: %w", f.After, err)
			}
			pos := issuedKey(last.IssuedAt, last.Serial)
			if k, _ = cur.Seek(pos); k == nil {
				k, _ = cur.Last()
			}
			for k != nil && bytes.Compare(k, pos) >= 0 {
				k, _ = cur.Prev()
			}
		}
		for ; k != nil; k, _ = cur.Prev() {
			if f.Limit > 0 && len(out) >= f.Limit {
				return nil
			}
			serial := string(k[12:])
			c := new(store.Certificate)
			if err := get(certs, []byte(serial), c); err != nil {
				return fmt.Errorf("index entry %s: %w", serial, err)
			}
			if f.Matches(c) {
				out = append(out, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list certificates: %w", err)
	}
	return out, nil
}

// UpdateCertificateStatus sets the status, revocation time and reason of the
// certificate serial; store.ErrNotFound if absent.
func (db *DB) UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCerts)
		var c store.Certificate
		if err := get(b, []byte(serial), &c); err != nil {
			return err
		}
		if c.Status == store.CertRevoked {
			return fmt.Errorf("already revoked: %w", store.ErrConflict)
		}
		c.Status = status
		c.RevokedAt = at
		c.RevocationReason = reason
		return put(b, []byte(serial), &c)
	})
	if err != nil {
		return fmt.Errorf("bolt: update certificate status %s: %w", serial, err)
	}
	return nil
}

// CountCertificates returns how many certificates are stored.
func (db *DB) CountCertificates(ctx context.Context) (int, error) {
	var n int
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketCerts).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: count certificates: %w", err)
	}
	return n, nil
}
