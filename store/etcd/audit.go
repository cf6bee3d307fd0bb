package etcd

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scepca/scepca/store"
)

// Audit events live under famEvents by descending(ID), so ascending key
// order is newest first and ListEvents reads pages in order. API tokens
// live under famTokens by ID.

// eventKey is the key of event id.
func (s *Store) eventKey(id string) string { return s.prefix + famEvents + descending(id) }

// eventID recovers the ID from a key under famEvents.
func eventID(k string) (string, error) {
	if len(k) < 2 || len(k)%2 != 0 || k[len(k)-2:] != "ff" {
		return "", fmt.Errorf("event key %q", k)
	}
	b, err := hex.DecodeString(k[:len(k)-2])
	if err != nil {
		return "", fmt.Errorf("event key %q: %w", k, err)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return string(b), nil
}

// AppendEvents stores events whose IDs are new, a batch per etcd
// transaction that compares every key absent (an ID already stored is
// skipped, so a retried append is no duplicate). Events from several
// replicas interleave by ID.
func (s *Store) AppendEvents(ctx context.Context, events []*store.Event) error {
	for _, e := range events {
		if e.ID == "" || !keyPart(e.ID) {
			return fmt.Errorf("etcd: append events: event without a valid id")
		}
	}
	for len(events) > 0 {
		batch := events[:min(len(events), maxTxnOps)]
		events = events[len(batch):]
		if err := s.appendEvents(ctx, batch); err != nil {
			return fmt.Errorf("etcd: append events: %w", err)
		}
	}
	return nil
}

func (s *Store) appendEvents(ctx context.Context, batch []*store.Event) error {
	return s.retry(ctx, func() error {
		keys := make([]string, len(batch))
		for i, e := range batch {
			keys[i] = s.eventKey(e.ID)
		}
		kvs, err := s.getAll(ctx, keys)
		if err != nil {
			return err
		}
		var (
			cmps []clientv3.Cmp
			ops  []clientv3.Op
		)
		for i, e := range batch {
			if kvs[i] != nil {
				continue
			}
			op, err := putJSON(keys[i], e)
			if err != nil {
				return err
			}
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(keys[i]), "=", 0))
			ops = append(ops, op)
		}
		if len(ops) == 0 {
			return nil
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		switch {
		case err != nil:
			return err
		case !resp.Succeeded:
			return errRetry // another replica appended one of them meanwhile
		}
		return nil
	})
}

// ListEvents returns the events matching f, greatest ID first, at most
// f.Limit when f.Limit > 0, reading pages at one revision and stopping
// at the first event older than f.Since.
func (s *Store) ListEvents(ctx context.Context, f store.EventFilter) ([]*store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("etcd: list events: %w", err)
	}
	prefix := s.prefix + famEvents
	from := prefix
	if f.Before != "" {
		from = s.eventKey(f.Before) + "\x00" // IDs before f.Before sort after its key
	}
	var out []*store.Event
	err := s.scanFrom(ctx, prefix, from, func(kv *mvccpb.KeyValue) error {
		if f.Limit > 0 && len(out) >= f.Limit {
			return errStop
		}
		e := new(store.Event)
		if err := json.Unmarshal(kv.Value, e); err != nil {
			return fmt.Errorf("decode event %q: %w", kv.Key, err)
		}
		if !f.Since.IsZero() && e.Time.Before(f.Since) {
			return errStop // IDs sort in time order: the rest are older
		}
		if f.Matches(e) {
			out = append(out, e)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("etcd: list events: %w", err)
	}
	return out, nil
}

// SweepEvents deletes events with Time before cutoff (retention) and
// returns how many.
func (s *Store) SweepEvents(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := s.sweep(ctx, s.prefix+famEvents, func(v []byte) (time.Time, error) {
		var e store.Event
		err := json.Unmarshal(v, &e)
		// sweep deletes values whose expiry is <= now; an event expires
		// just before the cutoff.
		return e.Time.Add(time.Nanosecond), err
	}, cutoff)
	if err != nil {
		return n, fmt.Errorf("etcd: sweep events: %w", err)
	}
	return n, nil
}

// CreateToken stores t; store.ErrExists if its ID is taken.
func (s *Store) CreateToken(ctx context.Context, t *store.APIToken) error {
	if t.ID == "" {
		return fmt.Errorf("etcd: create token: empty id")
	}
	if err := s.create(ctx, s.prefix+famTokens+t.ID, t); err != nil {
		return fmt.Errorf("etcd: create token %s: %w", t.ID, err)
	}
	return nil
}

// GetToken returns token id; store.ErrNotFound if absent.
func (s *Store) GetToken(ctx context.Context, id string) (*store.APIToken, error) {
	var t store.APIToken
	if _, err := s.getJSON(ctx, s.prefix+famTokens+id, &t); err != nil {
		return nil, fmt.Errorf("etcd: get token %s: %w", id, err)
	}
	return &t, nil
}

// ListTokens returns every token, ordered by ID.
func (s *Store) ListTokens(ctx context.Context) ([]*store.APIToken, error) {
	out, err := list[store.APIToken](ctx, s, s.prefix+famTokens)
	if err != nil {
		return nil, fmt.Errorf("etcd: list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken deletes token id; store.ErrNotFound if absent.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	if err := s.remove(ctx, s.prefix+famTokens+id); err != nil {
		return fmt.Errorf("etcd: delete token %s: %w", id, err)
	}
	return nil
}
