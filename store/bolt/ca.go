package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// CreateCA stores a new CA record; store.ErrExists if the ID is taken.
func (db *DB) CreateCA(ctx context.Context, c *store.CA) error {
	if c.ID == "" {
		return fmt.Errorf("bolt: create ca: empty id")
	}
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCAs)
		if b.Get([]byte(c.ID)) != nil {
			return store.ErrExists
		}
		return put(b, []byte(c.ID), c)
	})
	if err != nil {
		return fmt.Errorf("bolt: create ca %s: %w", c.ID, err)
	}
	return nil
}

// UpdateCA replaces an existing CA record (e.g. to drop the root's key after
// export); store.ErrNotFound if absent.
func (db *DB) UpdateCA(ctx context.Context, c *store.CA) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCAs)
		if b.Get([]byte(c.ID)) == nil {
			return store.ErrNotFound
		}
		return put(b, []byte(c.ID), c)
	})
	if err != nil {
		return fmt.Errorf("bolt: update ca %s: %w", c.ID, err)
	}
	return nil
}

// GetCA returns the CA record id; store.ErrNotFound if absent.
func (db *DB) GetCA(ctx context.Context, id string) (*store.CA, error) {
	var c store.CA
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketCAs), []byte(id), &c)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get ca %s: %w", id, err)
	}
	return &c, nil
}

// ListCAs returns every CA record, ordered by ID.
func (db *DB) ListCAs(ctx context.Context) ([]*store.CA, error) {
	var out []*store.CA
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		out, err = list[store.CA](tx.Bucket(bucketCAs))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list cas: %w", err)
	}
	return out, nil
}

// DeleteCA deletes the CA record id; store.ErrNotFound if absent. Callers
// decide which records may go (the admin API deletes uploaded intermediates
// only).
func (db *DB) DeleteCA(ctx context.Context, id string) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCAs)
		if b.Get([]byte(id)) == nil {
			return store.ErrNotFound
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete ca %s: %w", id, err)
	}
	return nil
}
