package bolt

import (
	"context"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// batchDelay is how long bbolt's Batch waits to gather concurrent writes
// into one transaction (bbolt's default is 10ms). A commit costs one fsync,
// so at sign-in rates, where every attestation mints a nonce, consumes it
// and records the result, gathering writes is what keeps the disk from
// being the bound; a millisecond is little latency beside an HTTP round
// trip and enough to gather the writes of a busy server.
const batchDelay = time.Millisecond

// batch runs fn in a write transaction shared with concurrent batch calls
// (bbolt's DB.Batch): one commit, so one fsync, for all of them. It returns
// only after that commit is durable, so a caller that gets nil knows its
// write survives a crash, exactly as with update.
//
// bbolt may call fn more than once (when another fn of the same batch fails
// it rolls the batch back and runs the rest again, and a failing fn runs
// again on its own), so fn must derive everything it writes from tx and
// its arguments, and must not keep results from an earlier call.
func (db *DB) batch(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bdb.Batch(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(tx)
	})
}

// oneTimeWrite is the write transaction for one-time values of kind:
// nonces, minted and consumed at sign-in rate, share commits (batch);
// challenges keep their own (update).
func (db *DB) oneTimeWrite(ctx context.Context, kind string, fn func(*bbolt.Tx) error) error {
	if kind == store.KindNonce {
		return db.batch(ctx, fn)
	}
	return db.update(ctx, fn)
}
