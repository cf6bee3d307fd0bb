package bolt

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"time"

	"go.etcd.io/bbolt"
)

var keyHealth = []byte("health")

// CheckWritable writes a timestamp under the meta bucket's health key in one
// durable transaction and reads it back: the readiness probe's store check.
func (db *DB) CheckWritable(ctx context.Context) error {
	v := []byte(strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := db.update(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyHealth, v)
	}); err != nil {
		return err
	}
	return db.view(ctx, func(tx *bbolt.Tx) error {
		if !bytes.Equal(tx.Bucket(bucketMeta).Get(keyHealth), v) {
			return errors.New("bolt: health key did not read back")
		}
		return nil
	})
}
