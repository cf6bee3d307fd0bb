package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// Devices live in bucketDevices under their ID; bindings in bucketBindings
// under the certificate's SHA-256 (uppercase hexadecimal).

// RecordAttestation records a successful attestation in one write,
// shared with concurrent ones (batch): the binding check, the device's
// lifecycle check and every update happen in the same transaction, so two
// devices racing to bind one certificate get exactly one winner, and a
// device suspended meanwhile is never recorded as attested.
func (db *DB) RecordAttestation(ctx context.Context, a *store.Attestation) (*store.Device, *store.Binding, error) {
	if a.DeviceID == "" {
		return nil, nil, errors.New("bolt: record attestation: empty device id")
	}
	if a.Certificate != nil && a.Certificate.SHA256 == "" {
		return nil, nil, fmt.Errorf("bolt: record attestation %s: certificate without hash", a.DeviceID)
	}
	var (
		dev     *store.Device
		bind    *store.Binding
		refused bool
	)
	err := db.batch(ctx, func(tx *bbolt.Tx) error {
		dev, bind, refused = nil, nil, false // a batched write may run this more than once
		devices, bindings := tx.Bucket(bucketDevices), tx.Bucket(bucketBindings)
		if a.Nonce != "" {
			// First, and before any write: a failure here is an outcome
			// that leaves the rest of the batch alone.
			if _, err := consumeOneTime(tx.Bucket(bucketOneTime), store.KindNonce, a.Nonce, nil, a.At); err != nil {
				return err
			}
		}
		var err error
		if dev, err = getDevice(devices, a.DeviceID); err != nil {
			return err
		}
		if a.Certificate != nil {
			if bind, err = getBinding(bindings, a.Certificate.SHA256); err != nil {
				return err
			}
		}
		if dev, bind, refused = a.Apply(dev, bind); refused {
			return nil
		}
		if bind != nil {
			if err := put(bindings, []byte(bind.CertSHA256), bind); err != nil {
				return err
			}
		}
		return put(devices, []byte(dev.ID), dev)
	})
	if err != nil {
		dev, bind = nil, nil
		return nil, nil, fmt.Errorf("bolt: record attestation %s: %w", a.DeviceID, err)
	}
	if refused {
		return dev, bind, fmt.Errorf("bolt: record attestation %s: %w", a.DeviceID, store.ErrConflict)
	}
	return dev, bind, nil
}

// getDevice returns the device id, or nil when absent.
func getDevice(b *bbolt.Bucket, id string) (*store.Device, error) {
	d := new(store.Device)
	switch err := get(b, []byte(id), d); {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("device %q: %w", id, err)
	}
	return d, nil
}

// getBinding returns the binding of sha, or nil when unbound.
func getBinding(b *bbolt.Bucket, sha string) (*store.Binding, error) {
	r := new(store.Binding)
	switch err := get(b, []byte(sha), r); {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("binding %s: %w", sha, err)
	}
	return r, nil
}

// GetDevice returns the device id; store.ErrNotFound if absent.
func (db *DB) GetDevice(ctx context.Context, id string) (*store.Device, error) {
	var d store.Device
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketDevices), []byte(id), &d)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get device %s: %w", id, err)
	}
	return &d, nil
}

// ListDevices returns every device, tombstones included, ordered by ID.
func (db *DB) ListDevices(ctx context.Context) ([]*store.Device, error) {
	var out []*store.Device
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		out, err = list[store.Device](tx.Bucket(bucketDevices))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list devices: %w", err)
	}
	return out, nil
}

// SetDeviceStatus sets the status of device id; DELETED also revokes the
// device's bindings in the same Update.
func (db *DB) SetDeviceStatus(ctx context.Context, id, status string, at time.Time) (*store.Device, error) {
	switch status {
	case store.DeviceActive, store.DeviceSuspended, store.DeviceDeactivated, store.DeviceDeleted:
	default:
		return nil, fmt.Errorf("bolt: set device status %s: unknown status %q", id, status)
	}
	var d store.Device
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		devices, bindings := tx.Bucket(bucketDevices), tx.Bucket(bucketBindings)
		if err := get(devices, []byte(id), &d); err != nil {
			return err
		}
		d.Status = status
		d.UpdatedAt = at
		if status == store.DeviceDeleted {
			for _, c := range d.Certificates {
				b, err := getBinding(bindings, c.SHA256)
				if err != nil {
					return err
				}
				if b == nil || b.DeviceID != id || b.Revoked {
					continue
				}
				b.Revoked = true
				if err := put(bindings, []byte(b.CertSHA256), b); err != nil {
					return err
				}
			}
		}
		return put(devices, []byte(id), &d)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: set device status %s: %w", id, err)
	}
	return &d, nil
}

// GetBinding returns the binding of the certificate hash certSHA256;
// store.ErrNotFound if unbound.
func (db *DB) GetBinding(ctx context.Context, certSHA256 string) (*store.Binding, error) {
	var b store.Binding
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bucketBindings), []byte(certSHA256), &b)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get binding %s: %w", certSHA256, err)
	}
	return &b, nil
}

// ListBindings returns every binding, ordered by certificate hash.
func (db *DB) ListBindings(ctx context.Context) ([]*store.Binding, error) {
	var out []*store.Binding
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		out, err = list[store.Binding](tx.Bucket(bucketBindings))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list bindings: %w", err)
	}
	return out, nil
}
