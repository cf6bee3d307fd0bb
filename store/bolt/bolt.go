package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

var _ store.Store = (*DB)(nil)

// schemaVersion is written once into a new file; Open refuses files written
// by another layout rather than misreading them.
const schemaVersion = "1"

// Buckets, all created by Open.
var (
	bucketMeta           = []byte("meta")
	bucketIntegrations   = []byte("integrations")
	bucketCAs            = []byte("cas")
	bucketCerts          = []byte("certificates")
	bucketCertsByIssued  = []byte("certificates_by_issued")
	bucketTransactions   = []byte("transactions")
	bucketOneTime        = []byte("onetime")
	bucketDevices        = []byte("devices")
	bucketBindings       = []byte("bindings")
	bucketEvents         = []byte("events")
	bucketTokens         = []byte("tokens")
	allBuckets           = [][]byte{bucketMeta, bucketIntegrations, bucketCAs, bucketCerts, bucketCertsByIssued, bucketTransactions, bucketOneTime, bucketDevices, bucketBindings, bucketEvents, bucketTokens}
	keySchemaVersion     = []byte("schema")
	errUnsupportedSchema = errors.New("unsupported schema version")
)

// DB is a store.Store kept in one bbolt file. Its methods are safe for
// concurrent use; bbolt serializes writers and lets readers run alongside.
type DB struct {
	bdb    *bbolt.DB
	group  group  // writes that share commits (batch.go)
	claims claims // PENDING transaction claims, kept in memory (transaction.go)
}

type config struct {
	lockTimeout time.Duration
}

// Option adjusts Open.
type Option func(*config)

// WithLockTimeout bounds how long Open waits for the file lock held by
// another process (or another Open in this one). The default is one second;
// bbolt would otherwise wait forever.
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) { c.lockTimeout = d }
}

// Open opens (creating if needed, mode 0600) the bbolt file at path and
// creates the buckets. It fails with an error wrapping bbolt's
// errors.ErrTimeout when another DB holds the file.
func Open(path string, opts ...Option) (*DB, error) {
	cfg := config{lockTimeout: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.lockTimeout <= 0 {
		return nil, fmt.Errorf("bolt: open %s: lock timeout %v must be positive", path, cfg.lockTimeout)
	}
	// NoSync stays false: every committed Update is fsync'd.
	bdb, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: cfg.lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if err := bdb.Update(initSchema); err != nil {
		_ = bdb.Close() // the schema error is the one worth reporting
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return &DB{bdb: bdb}, nil
}

func initSchema(tx *bbolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keySchemaVersion); {
	case v == nil:
		return meta.Put(keySchemaVersion, []byte(schemaVersion))
	case string(v) != schemaVersion:
		return fmt.Errorf("%w %q, want %q", errUnsupportedSchema, v, schemaVersion)
	}
	return nil
}

// Close releases the file and its lock.
func (db *DB) Close() error {
	if err := db.bdb.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// Path is the file the DB was opened on.
func (db *DB) Path() string { return db.bdb.Path() }

// Backup writes a consistent copy of the whole file to w while the DB stays
// in use, and returns the bytes written. The copy is a valid bbolt file that
// Open accepts. Writers keep committing during the copy, but one that must
// grow the file waits for it to finish.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bdb.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("bolt: backup: %w", err)
	}
	return n, nil
}

// view runs fn in a read transaction unless ctx is already done.
func (db *DB) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bdb.View(fn)
}

// update runs fn in one durable write transaction unless ctx is done before
// it starts or while it waited for the writer lock.
func (db *DB) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bdb.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(tx)
	})
}

// get decodes the value under key into v, or returns store.ErrNotFound.
func get(b *bbolt.Bucket, key []byte, v any) error {
	data := b.Get(key)
	if data == nil {
		return store.ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// put encodes v under key.
func put(b *bbolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return b.Put(key, data)
}

// list decodes every value of b, in key order.
func list[T any](b *bbolt.Bucket) ([]*T, error) {
	var out []*T
	err := b.ForEach(func(k, v []byte) error {
		r := new(T)
		if err := json.Unmarshal(v, r); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// sweep deletes the entries of b under prefix whose expiry is <= now and
// returns how many. Keys are collected during the walk and deleted after it:
// deleting under a bbolt cursor can skip the entry that follows.
func sweep(b *bbolt.Bucket, prefix []byte, expiry func(v []byte) (time.Time, error), now time.Time) (int, error) {
	var dead [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		exp, err := expiry(v)
		if err != nil {
			return 0, fmt.Errorf("decode %q: %w", k, err)
		}
		if !exp.After(now) {
			dead = append(dead, bytes.Clone(k))
		}
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}
