package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scepca/scepca/store"
)

// Devices live under famDevices by ID; bindings under famBindings by the
// certificate's SHA-256 (uppercase hexadecimal).

// RecordAttestation records a successful attestation in one etcd
// transaction: it reads the nonce, the device and the binding together,
// decides as store/bolt does, and writes the nonce's consumption, the
// binding and the device only if none of the three changed since (compare
// ModRevision, 0 for an absent key); a lost compare reads and decides
// again. So two devices racing to bind one certificate, or two sign-ins
// racing with one nonce, on any replicas, get exactly one winner, and a
// device suspended meanwhile is never recorded as attested.
func (s *Store) RecordAttestation(ctx context.Context, a *store.Attestation) (*store.Device, *store.Binding, error) {
	if a.DeviceID == "" {
		return nil, nil, errors.New("etcd: record attestation: empty device id")
	}
	if a.Certificate != nil && a.Certificate.SHA256 == "" {
		return nil, nil, fmt.Errorf("etcd: record attestation %s: certificate without hash", a.DeviceID)
	}
	var (
		dev     *store.Device
		bind    *store.Binding
		refused bool
	)
	err := s.retry(ctx, func() error {
		var err error
		dev, bind, refused, err = s.recordAttestation(ctx, a)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("etcd: record attestation %s: %w", a.DeviceID, err)
	}
	if refused {
		return dev, bind, fmt.Errorf("etcd: record attestation %s: %w", a.DeviceID, store.ErrConflict)
	}
	return dev, bind, nil
}

// recordAttestation is one attempt of RecordAttestation; errRetry when a
// compare lost.
func (s *Store) recordAttestation(ctx context.Context, a *store.Attestation) (dev *store.Device, bind *store.Binding, refused bool, err error) {
	devKey := s.prefix + famDevices + a.DeviceID
	keys := []string{devKey}
	var nonceKey, bindKey string
	if a.Certificate != nil {
		bindKey = s.prefix + famBindings + a.Certificate.SHA256
		keys = append(keys, bindKey)
	}
	if a.Nonce != "" {
		if nonceKey, err = s.oneTimeKey(store.KindNonce, a.Nonce); err != nil {
			return nil, nil, false, err
		}
		keys = append(keys, nonceKey)
	}
	kvs, err := s.getAll(ctx, keys)
	if err != nil {
		return nil, nil, false, err
	}
	cmps := make([]clientv3.Cmp, len(keys))
	for i, k := range keys {
		cmps[i] = modRev(k, kvs[i])
	}
	var ops []clientv3.Op
	if a.Nonce != "" {
		// First, and before any write: a refusal here writes nothing.
		_, op, err := redeem(nonceKey, kvs[len(kvs)-1], nil, a.At)
		if err != nil {
			return nil, nil, false, err
		}
		ops = append(ops, *op)
	}
	if dev, err = decodeOrNil[store.Device](kvs[0]); err != nil {
		return nil, nil, false, fmt.Errorf("device %q: %w", a.DeviceID, err)
	}
	if bindKey != "" {
		if bind, err = decodeOrNil[store.Binding](kvs[1]); err != nil {
			return nil, nil, false, fmt.Errorf("binding %s: %w", a.Certificate.SHA256, err)
		}
	}
	if dev, bind, refused = a.Apply(dev, bind); !refused {
		if bind != nil {
			op, err := putJSON(bindKey, bind)
			if err != nil {
				return nil, nil, false, err
			}
			ops = append(ops, op)
		}
		op, err := putJSON(devKey, dev)
		if err != nil {
			return nil, nil, false, err
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 {
		return dev, bind, refused, nil // refused, and no nonce to consume
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	switch {
	case err != nil:
		return nil, nil, false, err
	case !resp.Succeeded:
		return nil, nil, false, errRetry
	}
	return dev, bind, refused, nil
}

// getAll reads keys in one etcd transaction (one revision); an absent key
// gives nil.
func (s *Store) getAll(ctx context.Context, keys []string) ([]*mvccpb.KeyValue, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpGet(k)
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	out := make([]*mvccpb.KeyValue, len(keys))
	for i, r := range resp.Responses {
		if kvs := r.GetResponseRange().Kvs; len(kvs) > 0 {
			out[i] = kvs[0]
		}
	}
	return out, nil
}

// decodeOrNil decodes kv's value, or returns nil for an absent key.
func decodeOrNil[T any](kv *mvccpb.KeyValue) (*T, error) {
	if kv == nil {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return v, nil
}

// GetDevice returns the device id; store.ErrNotFound if absent.
func (s *Store) GetDevice(ctx context.Context, id string) (*store.Device, error) {
	var d store.Device
	if _, err := s.getJSON(ctx, s.prefix+famDevices+id, &d); err != nil {
		return nil, fmt.Errorf("etcd: get device %s: %w", id, err)
	}
	return &d, nil
}

// ListDevices returns every device, tombstones included, ordered by ID.
func (s *Store) ListDevices(ctx context.Context) ([]*store.Device, error) {
	out, err := list[store.Device](ctx, s, s.prefix+famDevices)
	if err != nil {
		return nil, fmt.Errorf("etcd: list devices: %w", err)
	}
	return out, nil
}

// SetDeviceStatus sets the status of device id; DELETED also revokes the
// device's bindings, in the same etcd transaction, compared against the
// device and bindings it read.
func (s *Store) SetDeviceStatus(ctx context.Context, id, status string, at time.Time) (*store.Device, error) {
	switch status {
	case store.DeviceActive, store.DeviceSuspended, store.DeviceDeactivated, store.DeviceDeleted:
	default:
		return nil, fmt.Errorf("etcd: set device status %s: unknown status %q", id, status)
	}
	devKey := s.prefix + famDevices + id
	var d *store.Device
	err := s.retry(ctx, func() error {
		d = new(store.Device)
		kv, err := s.getJSON(ctx, devKey, d)
		if err != nil {
			return err
		}
		cmps := []clientv3.Cmp{modRev(devKey, kv)}
		var ops []clientv3.Op
		d.Status = status
		d.UpdatedAt = at
		if status == store.DeviceDeleted && len(d.Certificates) > 0 {
			keys := make([]string, len(d.Certificates))
			for i, c := range d.Certificates {
				keys[i] = s.prefix + famBindings + c.SHA256
			}
			kvs, err := s.getAll(ctx, keys)
			if err != nil {
				return err
			}
			for i, bkv := range kvs {
				b, err := decodeOrNil[store.Binding](bkv)
				if err != nil {
					return fmt.Errorf("binding %s: %w", d.Certificates[i].SHA256, err)
				}
				cmps = append(cmps, modRev(keys[i], bkv))
				if b == nil || b.DeviceID != id || b.Revoked {
					continue
				}
				b.Revoked = true
				op, err := putJSON(keys[i], b)
				if err != nil {
					return err
				}
				ops = append(ops, op)
			}
		}
		op, err := putJSON(devKey, d)
		if err != nil {
			return err
		}
		ops = append(ops, op)
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		switch {
		case err != nil:
			return err
		case !resp.Succeeded:
			return errRetry
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: set device status %s: %w", id, err)
	}
	return d, nil
}

// GetBinding returns the binding of the certificate hash certSHA256;
// store.ErrNotFound if unbound.
func (s *Store) GetBinding(ctx context.Context, certSHA256 string) (*store.Binding, error) {
	var b store.Binding
	if _, err := s.getJSON(ctx, s.prefix+famBindings+certSHA256, &b); err != nil {
		return nil, fmt.Errorf("etcd: get binding %s: %w", certSHA256, err)
	}
	return &b, nil
}

// ListBindings returns every binding, ordered by certificate hash.
func (s *Store) ListBindings(ctx context.Context) ([]*store.Binding, error) {
	out, err := list[store.Binding](ctx, s, s.prefix+famBindings)
	if err != nil {
		return nil, fmt.Errorf("etcd: list bindings: %w", err)
	}
	return out, nil
}
