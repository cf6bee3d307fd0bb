package etcd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scepca/scepca/store"
)

// One-time values live under famOneTime by kind + "\x00" + key, so each
// kind is its own namespace. Errors name the kind but never the key: the
// key is derived from a secret and errors get logged.

func (s *Store) oneTimePrefix(kind string) (string, error) {
	if kind == "" || strings.IndexByte(kind, 0) >= 0 {
		return "", fmt.Errorf("invalid kind %q", kind)
	}
	return s.prefix + famOneTime + kind + "\x00", nil
}

func (s *Store) oneTimeKey(kind, key string) (string, error) {
	p, err := s.oneTimePrefix(kind)
	if err != nil {
		return "", err
	}
	return p + key, nil
}

// PutOneTime stores v under (kind, v.Key) if absent (compare
// CreateRevision = 0), under a lease ending after v.ExpiresAt;
// store.ErrExists if present, used or not, so a value is never minted
// twice.
func (s *Store) PutOneTime(ctx context.Context, kind string, v *store.OneTime) error {
	if v.Key == "" {
		return fmt.Errorf("etcd: put %s: empty key", kind)
	}
	k, err := s.oneTimeKey(kind, v.Key)
	if err != nil {
		return fmt.Errorf("etcd: put %s: %w", kind, err)
	}
	err = s.retry(ctx, func() error {
		lease, err := s.leaseFor(ctx, v.ExpiresAt)
		if err != nil {
			return err
		}
		return s.create(ctx, k, v, lease...)
	})
	if err != nil {
		return fmt.Errorf("etcd: put %s: %w", kind, err)
	}
	return nil
}

// ConsumeOneTime marks (kind, key) used at now and returns it. The mark is
// written only if the value is unchanged since it was read (compare
// ModRevision), so of many concurrent callers on every replica exactly one
// succeeds and the others get store.ErrUsed. store.ErrNotFound if never
// stored (or swept); store.ErrUsed if already consumed; else
// store.ErrExpired if ExpiresAt <= now.
func (s *Store) ConsumeOneTime(ctx context.Context, kind, key string, now time.Time) (*store.OneTime, error) {
	return s.RedeemOneTime(ctx, kind, key, nil, now)
}

// RedeemOneTime is ConsumeOneTime with a binding: the first redeemer marks
// the value used with binding, and the same non-empty binding may redeem
// it again (even after expiry, until it is swept).
func (s *Store) RedeemOneTime(ctx context.Context, kind, key string, binding []byte, now time.Time) (*store.OneTime, error) {
	k, err := s.oneTimeKey(kind, key)
	if err != nil {
		return nil, fmt.Errorf("etcd: consume %s: %w", kind, err)
	}
	var v *store.OneTime
	err = s.retry(ctx, func() error {
		kv, err := s.get(ctx, k)
		if err != nil {
			return err
		}
		var op *clientv3.Op
		v, op, err = redeem(k, kv, binding, now)
		if err != nil || op == nil {
			return err
		}
		resp, err := s.cli.Txn(ctx).If(modRev(k, kv)).Then(*op).Commit()
		switch {
		case err != nil:
			return err
		case !resp.Succeeded:
			return errRetry
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: consume %s: %w", kind, err)
	}
	return v, nil
}

// redeem checks the value kv read under k and returns it marked used with
// the put that marks it, or a store sentinel before writing anything. A
// retry by the same binding returns the value and no put.
func redeem(k string, kv *mvccpb.KeyValue, binding []byte, now time.Time) (*store.OneTime, *clientv3.Op, error) {
	if kv == nil {
		return nil, nil, store.ErrNotFound
	}
	v := new(store.OneTime)
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return nil, nil, fmt.Errorf("decode: %w", err)
	}
	switch {
	case !v.UsedAt.IsZero() && len(binding) > 0 && bytes.Equal(v.Binding, binding):
		return v, nil, nil
	case !v.UsedAt.IsZero():
		return nil, nil, store.ErrUsed
	case !v.ExpiresAt.After(now):
		return nil, nil, store.ErrExpired
	}
	v.UsedAt = now
	v.Binding = binding
	op, err := putJSON(k, v, keepLease(kv)...)
	if err != nil {
		return nil, nil, err
	}
	return v, &op, nil
}

// GetOneTime returns (kind, key), used or not; store.ErrNotFound if absent.
func (s *Store) GetOneTime(ctx context.Context, kind, key string) (*store.OneTime, error) {
	k, err := s.oneTimeKey(kind, key)
	if err != nil {
		return nil, fmt.Errorf("etcd: get %s: %w", kind, err)
	}
	var v store.OneTime
	if _, err := s.getJSON(ctx, k, &v); err != nil {
		return nil, fmt.Errorf("etcd: get %s: %w", kind, err)
	}
	return &v, nil
}

// CountOneTime counts the values of kind owned by owner that are unused
// and unexpired (ExpiresAt > now). It reads every value of kind.
func (s *Store) CountOneTime(ctx context.Context, kind, owner string, now time.Time) (int, error) {
	p, err := s.oneTimePrefix(kind)
	if err != nil {
		return 0, fmt.Errorf("etcd: count %s: %w", kind, err)
	}
	n := 0
	err = s.scan(ctx, p, func(kv *mvccpb.KeyValue) error {
		var v store.OneTime
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if v.Owner == owner && v.UsedAt.IsZero() && v.ExpiresAt.After(now) {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("etcd: count %s: %w", kind, err)
	}
	return n, nil
}

// SweepOneTime deletes the values of kind with ExpiresAt <= now, used or
// not, and returns how many.
func (s *Store) SweepOneTime(ctx context.Context, kind string, now time.Time) (int, error) {
	p, err := s.oneTimePrefix(kind)
	if err != nil {
		return 0, fmt.Errorf("etcd: sweep %s: %w", kind, err)
	}
	n, err := s.sweep(ctx, p, func(data []byte) (time.Time, error) {
		var v store.OneTime
		err := json.Unmarshal(data, &v)
		return v.ExpiresAt, err
	}, now)
	if err != nil {
		return n, fmt.Errorf("etcd: sweep %s: %w", kind, err)
	}
	return n, nil
}
