package bolt

import (
	"context"
	"errors"
	"fmt"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// Group commit for the writes that come at sign-in rate: every attestation
// mints a nonce, consumes it and records its outcome, and each write is a
// bbolt commit with an fsync. Writes that arrive while a commit is in
// flight wait for it and then share the next commit, so the disk costs one
// fsync per batch rather than per write, and an idle server adds no delay
// (bbolt's own DB.Batch waits a fixed MaxBatchDelay and, when commits are
// slower than that, splits the queue into many small batches).
//
// Every caller returns only after the commit that holds its write is
// durable, exactly as with update: a nonce reported consumed stays consumed
// across a crash.

// group is the queue of batched writes waiting for a commit.
type group struct {
	mu    sync.Mutex
	queue []*call
	busy  bool // a leader is committing
}

// call is one batched write.
type call struct {
	ctx context.Context
	fn  func(*bbolt.Tx) error
	err error
	// wake is signalled once: either the call is done (done true) or it
	// has been promoted to lead the next commit.
	wake chan struct{}
	done bool
}

// batch runs fn in a write transaction shared with concurrent batch
// calls. The first caller to find no commit in flight leads: it commits
// every queued write in one transaction and then hands the lead to the
// oldest write queued meanwhile, so no caller waits for more than the
// commit in flight and its own.
//
// fn may return one of the store sentinel errors (store.ErrNotFound,
// ErrExists, ErrUsed, ErrExpired, ErrConflict) only before it writes
// anything: such an outcome is returned to its caller while the others'
// writes commit. Any other error rolls the shared transaction back, and
// every write of the batch runs again alone, so fn must derive everything
// it writes from tx and its arguments and reset what it decodes.
func (db *DB) batch(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &call{ctx: ctx, fn: fn, wake: make(chan struct{}, 1)}
	g := &db.group
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.busy {
		g.mu.Unlock()
		<-c.wake
		if c.done {
			return c.err
		}
		g.mu.Lock() // promoted: lead the next commit
	}
	g.busy = true
	calls := g.queue
	g.queue = nil
	g.mu.Unlock()

	db.commit(calls)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].wake <- struct{}{} // it leads the next commit
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return c.err
}

// commit runs calls in one transaction (or, if one fails, each alone),
// sets their errors and wakes all but the leader, which is calls' owner.
func (db *DB) commit(calls []*call) {
	errs := make([]error, len(calls))
	err := db.bdb.Update(func(tx *bbolt.Tx) error {
		for i, c := range calls {
			errs[i] = run(c, tx)
			if errs[i] != nil && !isOutcome(errs[i]) {
				return errs[i]
			}
		}
		return nil
	})
	if err != nil {
		// Something failed mid-write (or the commit itself did): nothing
		// of this batch is on disk. Run every write alone.
		for i, c := range calls {
			errs[i] = db.bdb.Update(func(tx *bbolt.Tx) error { return run(c, tx) })
		}
	}
	for i, c := range calls {
		c.err, c.done = errs[i], true
		if i > 0 { // calls[0] is the leader, which is not waiting
			c.wake <- struct{}{}
		}
	}
}

// run calls c.fn unless its context ended before it ran (an outcome: it
// wrote nothing), turning a panic into an error so that one write cannot
// strand the others of its batch.
func run(c *call, tx *bbolt.Tx) (err error) {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("bolt: batched write panicked: %v", v)
		}
	}()
	return c.fn(tx)
}

// isOutcome reports whether err is an answer that wrote nothing (see
// batch), so the rest of the batch can commit.
func isOutcome(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) ||
		errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrExpired) ||
		errors.Is(err, store.ErrConflict) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
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
