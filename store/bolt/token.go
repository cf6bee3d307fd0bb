package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// CreateToken stores t; store.ErrExists if its ID is taken.
func (db *DB) CreateToken(ctx context.Context, t *store.APIToken) error {
	if t.ID == "" {
		return fmt.Errorf("bolt: create token: empty id")
	}
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b.Get([]byte(t.ID)) != nil {
			return store.ErrExists
		}
		return put(b, []byte(t.ID), t)
	})
	if err != nil {
		return fmt.Errorf("bolt: create token %s: %w", t.ID, err)
	}
	return nil
}

// GetToken returns token id; store.ErrNotFound if absent.
func (db *DB) GetToken(ctx context.Context, id string) (*store.APIToken, error) {
	var t store.APIToken
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketTokens), []byte(id), &t)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get token %s: %w", id, err)
	}
	return &t, nil
}

// ListTokens returns every token, ordered by ID.
func (db *DB) ListTokens(ctx context.Context) ([]*store.APIToken, error) {
	var out []*store.APIToken
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		out, err = list[store.APIToken](tx.Bucket(bucketTokens))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken deletes token id; store.ErrNotFound if absent.
func (db *DB) DeleteToken(ctx context.Context, id string) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b.Get([]byte(id)) == nil {
			return store.ErrNotFound
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete token %s: %w", id, err)
	}
	return nil
}
