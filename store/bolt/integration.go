package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// CreateIntegration stores a new integration; store.ErrExists if the ID is
// taken.
func (db *DB) CreateIntegration(ctx context.Context, in *store.Integration) error {
	if in.ID == "" {
		return fmt.Errorf("bolt: create integration: empty id")
	}
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketIntegrations)
		if b.Get([]byte(in.ID)) != nil {
			return store.ErrExists
		}
		return put(b, []byte(in.ID), in)
	})
	if err != nil {
		return fmt.Errorf("bolt: create integration %s: %w", in.ID, err)
	}
	return nil
}

// UpdateIntegration replaces an existing integration; store.ErrNotFound if
// absent.
func (db *DB) UpdateIntegration(ctx context.Context, in *store.Integration) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketIntegrations)
		if b.Get([]byte(in.ID)) == nil {
			return store.ErrNotFound
		}
		return put(b, []byte(in.ID), in)
	})
	if err != nil {
		return fmt.Errorf("bolt: update integration %s: %w", in.ID, err)
	}
	return nil
}

// GetIntegration returns the integration id; store.ErrNotFound if absent.
func (db *DB) GetIntegration(ctx context.Context, id string) (*store.Integration, error) {
	var in store.Integration
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketIntegrations), []byte(id), &in)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get integration %s: %w", id, err)
	}
	return &in, nil
}

// ListIntegrations returns every integration, ordered by ID.
func (db *DB) ListIntegrations(ctx context.Context) ([]*store.Integration, error) {
	var out []*store.Integration
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		out, err = list[store.Integration](tx.Bucket(bucketIntegrations))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list integrations: %w", err)
	}
	return out, nil
}

// DeleteIntegration deletes the integration id; store.ErrNotFound if absent.
// Its certificates and transactions are kept: issued certificates stay on
// record, and transactions age out through SweepTransactions.
func (db *DB) DeleteIntegration(ctx context.Context, id string) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketIntegrations)
		if b.Get([]byte(id)) == nil {
			return store.ErrNotFound
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete integration %s: %w", id, err)
	}
	return nil
}
