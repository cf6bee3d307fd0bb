package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// Export and Import move records between backends (`scepca store
// migrate`). A record travels as its bucket name, key and JSON value,
// exactly as this package stores it; store/etcd maps the bucket names to
// its key families. Derived indexes do not travel: Import rebuilds them.

// Record is one exported record.
type Record struct {
	Bucket     string
	Key, Value []byte
}

// derived are the buckets rebuilt from others, and meta, which each
// backend keeps for itself.
var derived = map[string]bool{
	string(bucketMeta):          true,
	string(bucketCertsByIssued): true,
}

// Export calls fn for every record, bucket by bucket (in name order) and
// in key order within a bucket, from one read transaction: a consistent
// snapshot while the DB stays in use. PENDING claims, which live in
// memory, are not records.
func (db *DB) Export(ctx context.Context, fn func(Record) error) error {
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			if derived[string(name)] {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				return fn(Record{Bucket: string(name), Key: k, Value: v})
			})
		})
	})
	if err != nil {
		return fmt.Errorf("bolt: export: %w", err)
	}
	return nil
}

// Import stores exported records whose keys are free, in one durable
// write, with the index entry of each certificate. A record already there
// with the same value is skipped (a migration may run again); one with
// another value fails the whole write with store.ErrExists. An unknown or
// derived bucket is an error: nothing is dropped silently.
func (db *DB) Import(ctx context.Context, recs []Record) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		for _, r := range recs {
			if err := importRecord(tx, r); err != nil {
				return fmt.Errorf("%s: %w", r.Bucket, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: import: %w", err)
	}
	return nil
}

func importRecord(tx *bbolt.Tx, r Record) error {
	if derived[r.Bucket] {
		return fmt.Errorf("bucket %s is derived", r.Bucket)
	}
	b := tx.Bucket([]byte(r.Bucket))
	if b == nil {
		return fmt.Errorf("unknown bucket %q", r.Bucket)
	}
	if cur := b.Get(r.Key); cur != nil {
		if bytes.Equal(cur, r.Value) {
			return nil
		}
		return store.ErrExists
	}
	if r.Bucket == string(bucketCerts) {
		var c store.Certificate
		if err := json.Unmarshal(r.Value, &c); err != nil {
			return fmt.Errorf("decode certificate: %w", err)
		}
		if c.Serial != string(r.Key) {
			return fmt.Errorf("certificate %q holds serial %q", r.Key, c.Serial)
		}
		if err := tx.Bucket(bucketCertsByIssued).Put(issuedKey(c.IssuedAt, c.Serial), []byte{}); err != nil {
			return err
		}
	}
	return b.Put(r.Key, r.Value)
}

// WriteBackup is Backup for a stream that needs the length first: it
// calls begin with the size of the copy before writing its first byte
// (an HTTP response's Content-Length), then writes exactly that many bytes
// unless it fails.
func (db *DB) WriteBackup(ctx context.Context, w io.Writer, begin func(size int64)) (int64, error) {
	var n int64
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		begin(tx.Size())
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("bolt: backup: %w", err)
	}
	return n, nil
}
