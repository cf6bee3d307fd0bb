package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/scepca/scepca/store"
)

// TestBatch: group commit keeps every write's own answer. Concurrent
// writes share commits; an outcome (a store sentinel returned before
// writing) leaves the others alone; a failure, a panic or a canceled
// context costs only its own write, and every successful write is on disk.
func TestBatch(t *testing.T) {
	t.Parallel()
	db, err := Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	errBoom := errors.New("boom")
	canceled, cancel := context.WithCancel(t.Context())
	cancel()

	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := []byte(fmt.Sprintf("k%03d", i))
			ctx := t.Context()
			if i%50 == 7 {
				ctx = canceled
			}
			errs[i] = db.batch(ctx, func(tx *bbolt.Tx) error {
				b := tx.Bucket(bucketMeta)
				switch i % 10 {
				case 3: // an outcome: answers before writing
					return store.ErrUsed
				case 5: // a failure after writing: rolls back, runs alone
					if err := b.Put(key, []byte("partial")); err != nil {
						return err
					}
					return errBoom
				case 9:
					if i%20 == 9 {
						panic("write panicked")
					}
				}
				return b.Put(key, []byte("ok"))
			})
		})
	}
	wg.Wait()

	for i := range n {
		key := []byte(fmt.Sprintf("k%03d", i))
		var got []byte
		if err := db.bdb.View(func(tx *bbolt.Tx) error {
			got = append([]byte(nil), tx.Bucket(bucketMeta).Get(key)...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var want error
		wantValue := "ok"
		switch {
		case i%50 == 7:
			want, wantValue = context.Canceled, ""
		case i%10 == 3:
			want, wantValue = store.ErrUsed, ""
		case i%10 == 5:
			want, wantValue = errBoom, ""
		case i%20 == 9:
			wantValue = ""
		}
		if i%20 == 9 && i%50 != 7 {
			if errs[i] == nil || errors.Is(errs[i], errBoom) {
				t.Errorf("write %d (panics) = %v, want an error", i, errs[i])
			}
		} else if !errors.Is(errs[i], want) || (want == nil && errs[i] != nil) {
			t.Errorf("write %d = %v, want %v", i, errs[i], want)
		}
		if string(got) != wantValue {
			t.Errorf("write %d left %q, want %q", i, got, wantValue)
		}
	}
}
