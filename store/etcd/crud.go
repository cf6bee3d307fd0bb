package etcd

import (
	"context"
	"fmt"

	"github.com/scepca/scepca/store"
)

// Integrations live under famIntegrations, CA records under famCAs, each
// by ID.

// CreateIntegration stores a new integration; store.ErrExists if the ID is
// taken.
func (s *Store) CreateIntegration(ctx context.Context, in *store.Integration) error {
	if in.ID == "" {
		return fmt.Errorf("etcd: create integration: empty id")
	}
	if err := s.create(ctx, s.prefix+famIntegrations+in.ID, in); err != nil {
		return fmt.Errorf("etcd: create integration %s: %w", in.ID, err)
	}
	return nil
}

// UpdateIntegration replaces an existing integration; store.ErrNotFound if
// absent.
func (s *Store) UpdateIntegration(ctx context.Context, in *store.Integration) error {
	if err := s.replace(ctx, s.prefix+famIntegrations+in.ID, in); err != nil {
		return fmt.Errorf("etcd: update integration %s: %w", in.ID, err)
	}
	return nil
}

// GetIntegration returns the integration id; store.ErrNotFound if absent.
func (s *Store) GetIntegration(ctx context.Context, id string) (*store.Integration, error) {
	var in store.Integration
	if _, err := s.getJSON(ctx, s.prefix+famIntegrations+id, &in); err != nil {
		return nil, fmt.Errorf("etcd: get integration %s: %w", id, err)
	}
	return &in, nil
}

// ListIntegrations returns every integration, ordered by ID.
func (s *Store) ListIntegrations(ctx context.Context) ([]*store.Integration, error) {
	out, err := list[store.Integration](ctx, s, s.prefix+famIntegrations)
	if err != nil {
		return nil, fmt.Errorf("etcd: list integrations: %w", err)
	}
	return out, nil
}

// DeleteIntegration deletes the integration id; store.ErrNotFound if
// absent. Its certificates and transactions are kept, as in store/bolt.
func (s *Store) DeleteIntegration(ctx context.Context, id string) error {
	if err := s.remove(ctx, s.prefix+famIntegrations+id); err != nil {
		return fmt.Errorf("etcd: delete integration %s: %w", id, err)
	}
	return nil
}

// CreateCA stores a new CA record; store.ErrExists if the ID is taken.
// Replicas starting together on an empty prefix race here, and exactly one
// creates each record.
func (s *Store) CreateCA(ctx context.Context, c *store.CA) error {
	if c.ID == "" {
		return fmt.Errorf("etcd: create ca: empty id")
	}
	if err := s.create(ctx, s.prefix+famCAs+c.ID, c); err != nil {
		return fmt.Errorf("etcd: create ca %s: %w", c.ID, err)
	}
	return nil
}

// UpdateCA replaces an existing CA record; store.ErrNotFound if absent.
func (s *Store) UpdateCA(ctx context.Context, c *store.CA) error {
	if err := s.replace(ctx, s.prefix+famCAs+c.ID, c); err != nil {
		return fmt.Errorf("etcd: update ca %s: %w", c.ID, err)
	}
	return nil
}

// GetCA returns the CA record id; store.ErrNotFound if absent.
func (s *Store) GetCA(ctx context.Context, id string) (*store.CA, error) {
	var c store.CA
	if _, err := s.getJSON(ctx, s.prefix+famCAs+id, &c); err != nil {
		return nil, fmt.Errorf("etcd: get ca %s: %w", id, err)
	}
	return &c, nil
}

// ListCAs returns every CA record, ordered by ID.
func (s *Store) ListCAs(ctx context.Context) ([]*store.CA, error) {
	out, err := list[store.CA](ctx, s, s.prefix+famCAs)
	if err != nil {
		return nil, fmt.Errorf("etcd: list cas: %w", err)
	}
	return out, nil
}

// DeleteCA deletes the CA record id; store.ErrNotFound if absent.
func (s *Store) DeleteCA(ctx context.Context, id string) error {
	if err := s.remove(ctx, s.prefix+famCAs+id); err != nil {
		return fmt.Errorf("etcd: delete ca %s: %w", id, err)
	}
	return nil
}
