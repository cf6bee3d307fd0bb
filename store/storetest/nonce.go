package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

// testNonceConcurrent: attestation nonces are minted and consumed at
// sign-in rate, concurrently, and a backend may gather such writes into
// shared commits (bbolt batches them). Mixed with consumers that must fail
// (replays, expired and unknown nonces) in the same instant, every nonce
// is still minted once and consumed exactly once, and each refusal keeps
// its own error.
func testNonceConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const nonces, racers = 40, 8
	exp := t0.Add(5 * time.Minute)
	var wg sync.WaitGroup
	for k := range nonces {
		wg.Go(func() {
			key := fmt.Sprintf("nonce-%d", k)
			e := exp
			if k%10 == 0 {
				e = t0 // expired at now
			}
			if err := s.PutOneTime(ctx, store.KindNonce, oneTime(key, "", e)); err != nil {
				t.Errorf("%s = %v, want nil", call("PutOneTime", store.KindNonce, key), err)
			}
		})
	}
	wg.Wait()

	now := t0
	var (
		mu   sync.Mutex
		wins = map[string]int{}
	)
	for r := range racers {
		for k := range nonces + 5 { // the last 5 were never minted
			wg.Go(func() {
				key := fmt.Sprintf("nonce-%d", k)
				got, err := s.ConsumeOneTime(ctx, store.KindNonce, key, now)
				c := call("ConsumeOneTime", store.KindNonce, key, now) + fmt.Sprintf(" by racer %d", r)
				switch {
				case k >= nonces:
					wantErr(t, c, err, store.ErrNotFound)
				case k%10 == 0:
					wantErr(t, c, err, store.ErrExpired)
				case err == nil:
					if got == nil || got.Key != key || !got.UsedAt.Equal(now) {
						t.Errorf("%s = %+v, want %q used at %v", c, got, key, now)
					}
					mu.Lock()
					wins[key]++
					mu.Unlock()
				case !errors.Is(err, store.ErrUsed):
					t.Errorf("%s = %v, want nil or %v", c, err, store.ErrUsed)
				}
			})
		}
	}
	wg.Wait()
	for k := range nonces {
		key := fmt.Sprintf("nonce-%d", k)
		want := 1
		if k%10 == 0 {
			want = 0
		}
		if wins[key] != want {
			t.Errorf("%d racers consumed %q %d times, want %d", racers, key, wins[key], want)
		}
	}
}
