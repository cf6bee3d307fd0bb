package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// One-time values share one bucket under kind + "\x00" + key, so each kind
// is its own namespace. Errors name the kind but never the key: the key is
// derived from a secret (a challenge password's hash) and errors get logged.

// oneTimePrefix is kind + "\x00", or an error for a kind that would make
// keys ambiguous. Kinds come from code (store.KindChallenge,
// store.KindNonce), never from the wire.
func oneTimePrefix(kind string) ([]byte, error) {
	if kind == "" || strings.IndexByte(kind, 0) >= 0 {
		return nil, fmt.Errorf("invalid kind %q", kind)
	}
	return []byte(kind + "\x00"), nil
}

func oneTimeKey(kind, key string) ([]byte, error) {
	p, err := oneTimePrefix(kind)
	if err != nil {
		return nil, err
	}
	return append(p, key...), nil
}

// PutOneTime stores v under (kind, v.Key); store.ErrExists if present, used
// or not, so a value is never minted twice.
func (db *DB) PutOneTime(ctx context.Context, kind string, v *store.OneTime) error {
	if v.Key == "" {
		return fmt.Errorf("bolt: put %s: empty key", kind)
	}
	k, err := oneTimeKey(kind, v.Key)
	if err != nil {
		return fmt.Errorf("bolt: put %s: %w", kind, err)
	}
	err = db.oneTimeWrite(ctx, kind, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOneTime)
		if b.Get(k) != nil {
			return store.ErrExists
		}
		return put(b, k, v)
	})
	if err != nil {
		return fmt.Errorf("bolt: put %s: %w", kind, err)
	}
	return nil
}

// ConsumeOneTime marks (kind, key) used at now and returns it. The check and
// the mark are one Update, so a value is redeemed at most once: of many
// concurrent callers exactly one succeeds and the others get store.ErrUsed.
// store.ErrNotFound if never stored (or swept); store.ErrUsed if already
// consumed, whether or not it has expired since; else store.ErrExpired if
// ExpiresAt <= now.
func (db *DB) ConsumeOneTime(ctx context.Context, kind, key string, now time.Time) (*store.OneTime, error) {
	return db.RedeemOneTime(ctx, kind, key, nil, now)
}

// RedeemOneTime is ConsumeOneTime with a binding: the first redeemer marks
// the value used with binding, and the same non-empty binding may redeem it
// again (even after expiry, until it is swept). Check and mark are one
// Update, so exactly one binding wins among concurrent callers.
func (db *DB) RedeemOneTime(ctx context.Context, kind, key string, binding []byte, now time.Time) (*store.OneTime, error) {
	k, err := oneTimeKey(kind, key)
	if err != nil {
		return nil, fmt.Errorf("bolt: consume %s: %w", kind, err)
	}
	var v *store.OneTime
	err = db.oneTimeWrite(ctx, kind, func(tx *bbolt.Tx) error {
		var err error // v is set afresh: a batched write may run more than once
		v, err = redeem(tx.Bucket(bucketOneTime), k, binding, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: consume %s: %w", kind, err)
	}
	return v, nil
}

// consumeOneTime is RedeemOneTime inside a write transaction, for writes
// that consume a value together with others (RecordAttestation). It
// returns a store sentinel before writing anything, or writes the mark.
func consumeOneTime(b *bbolt.Bucket, kind, key string, binding []byte, now time.Time) (*store.OneTime, error) {
	k, err := oneTimeKey(kind, key)
	if err != nil {
		return nil, err
	}
	return redeem(b, k, binding, now)
}

// redeem checks and marks the value under k: see RedeemOneTime.
func redeem(b *bbolt.Bucket, k, binding []byte, now time.Time) (*store.OneTime, error) {
	v := new(store.OneTime)
	if err := get(b, k, v); err != nil {
		return nil, err
	}
	switch {
	case !v.UsedAt.IsZero() && len(binding) > 0 && bytes.Equal(v.Binding, binding):
		return v, nil
	case !v.UsedAt.IsZero():
		return nil, store.ErrUsed
	case !v.ExpiresAt.After(now):
		return nil, store.ErrExpired
	}
	v.UsedAt = now
	v.Binding = binding
	return v, put(b, k, v)
}

// GetOneTime returns (kind, key), used or not; store.ErrNotFound if absent.
func (db *DB) GetOneTime(ctx context.Context, kind, key string) (*store.OneTime, error) {
	k, err := oneTimeKey(kind, key)
	if err != nil {
		return nil, fmt.Errorf("bolt: get %s: %w", kind, err)
	}
	var v store.OneTime
	err = db.view(ctx, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketOneTime), k, &v)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get %s: %w", kind, err)
	}
	return &v, nil
}

// CountOneTime counts the values of kind owned by owner that are unused and
// unexpired (ExpiresAt > now). It walks every value of kind.
func (db *DB) CountOneTime(ctx context.Context, kind, owner string, now time.Time) (int, error) {
	p, err := oneTimePrefix(kind)
	if err != nil {
		return 0, fmt.Errorf("bolt: count %s: %w", kind, err)
	}
	var n int
	err = db.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketOneTime).Cursor()
		for k, data := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, data = c.Next() {
			var v store.OneTime
			if err := json.Unmarshal(data, &v); err != nil {
				return fmt.Errorf("decode: %w", err)
			}
			if v.Owner == owner && v.UsedAt.IsZero() && v.ExpiresAt.After(now) {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: count %s: %w", kind, err)
	}
	return n, nil
}

// SweepOneTime deletes the values of kind with ExpiresAt <= now, used or
// not, and returns how many. Used values that have not expired are kept, so
// a replay still gets store.ErrUsed rather than store.ErrNotFound.
func (db *DB) SweepOneTime(ctx context.Context, kind string, now time.Time) (int, error) {
	p, err := oneTimePrefix(kind)
	if err != nil {
		return 0, fmt.Errorf("bolt: sweep %s: %w", kind, err)
	}
	var n int
	err = db.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		n, err = sweep(tx.Bucket(bucketOneTime), p, func(data []byte) (time.Time, error) {
			var v store.OneTime
			err := json.Unmarshal(data, &v)
			return v.ExpiresAt, err
		}, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: sweep %s: %w", kind, err)
	}
	return n, nil
}
