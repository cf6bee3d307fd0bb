package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// AppendEvents stores events in one write, keyed by ID; an ID already
// stored is skipped.
func (db *DB) AppendEvents(ctx context.Context, events []*store.Event) error {
	for _, e := range events {
		if e.ID == "" {
			return fmt.Errorf("bolt: append events: event without id")
		}
	}
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		for _, e := range events {
			if b.Get([]byte(e.ID)) != nil {
				continue
			}
			if err := put(b, []byte(e.ID), e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: append events: %w", err)
	}
	return nil
}

// ListEvents returns the events matching f, greatest ID first. It walks the
// ID index backwards from f.Before, decoding only the values it examines.
func (db *DB) ListEvents(ctx context.Context, f store.EventFilter) ([]*store.Event, error) {
	var out []*store.Event
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		k, v := c.Last()
		if f.Before != "" {
			k, v = c.Seek([]byte(f.Before))
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && bytes.Compare(k, []byte(f.Before)) >= 0 {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			if f.Limit > 0 && len(out) >= f.Limit {
				return nil
			}
			e := new(store.Event)
			if err := json.Unmarshal(v, e); err != nil {
				return fmt.Errorf("decode event %q: %w", k, err)
			}
			if !f.Since.IsZero() && e.Time.Before(f.Since) {
				return nil // IDs sort in time order: the rest are older
			}
			if f.Matches(e) {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list events: %w", err)
	}
	return out, nil
}

// SweepEvents deletes events with Time before cutoff.
func (db *DB) SweepEvents(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		n, err = sweep(tx.Bucket(bucketEvents), nil, func(v []byte) (time.Time, error) {
			var e store.Event
			err := json.Unmarshal(v, &e)
			// sweep deletes entries whose expiry is <= now; an event
			// expires just before the cutoff.
			return e.Time.Add(time.Nanosecond), err
		}, cutoff)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: sweep events: %w", err)
	}
	return n, nil
}
