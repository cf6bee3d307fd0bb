package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/store"
)

func testPutOneTime(t *testing.T, s store.Store) {
	ctx := t.Context()
	v := oneTime("k1", "int-1", t0.Add(time.Hour))
	must(t, call("PutOneTime", store.KindChallenge, "k1"), s.PutOneTime(ctx, store.KindChallenge, v))
	v.Data[0] ^= 0xff // the store must not alias the caller's bytes

	want := oneTime("k1", "int-1", t0.Add(time.Hour))
	got, err := s.GetOneTime(ctx, store.KindChallenge, "k1")
	must(t, call("GetOneTime", store.KindChallenge, "k1"), err)
	wantDiff(t, call("GetOneTime", store.KindChallenge, "k1"), want, got)

	dup := oneTime("k1", "int-2", t0.Add(2*time.Hour))
	dup.Data = []byte("duplicate")
	wantErr(t, call("PutOneTime", store.KindChallenge, "k1")+" again", s.PutOneTime(ctx, store.KindChallenge, dup), store.ErrExists)
	got, err = s.GetOneTime(ctx, store.KindChallenge, "k1")
	must(t, call("GetOneTime", store.KindChallenge, "k1"), err)
	wantDiff(t, call("GetOneTime", store.KindChallenge, "k1")+" after a refused duplicate", want, got)

	// A consumed value is still present: it is never minted again.
	_, err = s.ConsumeOneTime(ctx, store.KindChallenge, "k1", t0)
	must(t, call("ConsumeOneTime", store.KindChallenge, "k1", t0), err)
	wantErr(t, call("PutOneTime", store.KindChallenge, "k1")+" after consume", s.PutOneTime(ctx, store.KindChallenge, dup), store.ErrExists)
}

func testConsumeOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, kind := range []string{store.KindChallenge, store.KindNonce} {
		must(t, call("PutOneTime", kind, "k1"), s.PutOneTime(ctx, kind, oneTime("k1", "int-1", t0.Add(5*time.Minute))))

		usedAt := t0.Add(time.Minute)
		want := oneTime("k1", "int-1", t0.Add(5*time.Minute))
		want.UsedAt = usedAt
		got, err := s.ConsumeOneTime(ctx, kind, "k1", usedAt)
		must(t, call("ConsumeOneTime", kind, "k1", usedAt), err)
		wantDiff(t, call("ConsumeOneTime", kind, "k1", usedAt), want, got)
		got, err = s.GetOneTime(ctx, kind, "k1")
		must(t, call("GetOneTime", kind, "k1"), err)
		wantDiff(t, call("GetOneTime", kind, "k1")+" after consume", want, got)

		later := t0.Add(2 * time.Minute)
		got, err = s.ConsumeOneTime(ctx, kind, "k1", later)
		if wantErr(t, call("ConsumeOneTime", kind, "k1", later)+" again", err, store.ErrUsed) && got != nil {
			t.Errorf("%s again = %+v, want nil with %v", call("ConsumeOneTime", kind, "k1", later), got, store.ErrUsed)
		}
		got, err = s.GetOneTime(ctx, kind, "k1")
		must(t, call("GetOneTime", kind, "k1"), err)
		wantDiff(t, call("GetOneTime", kind, "k1")+" after a refused second consume", want, got)
	}
}

func testConsumeExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	exp := t0.Add(5 * time.Minute)
	must(t, call("PutOneTime", store.KindNonce, "n1"), s.PutOneTime(ctx, store.KindNonce, oneTime("n1", "", exp)))

	// ExpiresAt <= now is expired; the injected now is the only clock.
	for _, now := range []time.Time{exp, exp.Add(time.Hour)} {
		got, err := s.ConsumeOneTime(ctx, store.KindNonce, "n1", now)
		if wantErr(t, call("ConsumeOneTime", store.KindNonce, "n1", now), err, store.ErrExpired) && got != nil {
			t.Errorf("%s = %+v, want nil with %v", call("ConsumeOneTime", store.KindNonce, "n1", now), got, store.ErrExpired)
		}
	}
	got, err := s.GetOneTime(ctx, store.KindNonce, "n1")
	must(t, call("GetOneTime", store.KindNonce, "n1"), err)
	if !got.UsedAt.IsZero() {
		t.Errorf("GetOneTime(%q, %q).UsedAt = %v after expired consumes, want zero", store.KindNonce, "n1", got.UsedAt)
	}

	// The refused attempts consumed nothing: just before expiry it works.
	justBefore := exp.Add(-time.Nanosecond)
	_, err = s.ConsumeOneTime(ctx, store.KindNonce, "n1", justBefore)
	wantErr(t, call("ConsumeOneTime", store.KindNonce, "n1", justBefore), err, nil)
}

// testConsumeOnceConcurrent: a challenge or nonce presented by many racing
// requests is redeemed exactly once. The goroutines race over several keys
// in turn, which gives a check-then-write gap many chances to show.
func testConsumeOnceConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n, keys = 50, 10
	for k := range keys {
		key := fmt.Sprintf("race-%d", k)
		must(t, call("PutOneTime", store.KindChallenge, key), s.PutOneTime(ctx, store.KindChallenge, oneTime(key, "int-1", t0.Add(time.Hour))))
	}

	now := t0.Add(time.Minute)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		got   [keys][n]*store.OneTime
		errs  [keys][n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			for k := range keys {
				got[k][i], errs[k][i] = s.ConsumeOneTime(ctx, store.KindChallenge, fmt.Sprintf("race-%d", k), now)
			}
		})
	}
	close(start)
	wg.Wait()

	for k := range keys {
		c := call("ConsumeOneTime", store.KindChallenge, fmt.Sprintf("race-%d", k), now)
		var winners []int
		for i := range n {
			switch {
			case errs[k][i] == nil && got[k][i] != nil:
				winners = append(winners, i)
				if !got[k][i].UsedAt.Equal(now) {
					t.Errorf("winner %d: %s.UsedAt = %v, want %v", i, c, got[k][i].UsedAt, now)
				}
			case errors.Is(errs[k][i], store.ErrUsed):
			default:
				t.Errorf("consumer %d: %s = %v, %v, want the value or %v", i, c, got[k][i], errs[k][i], store.ErrUsed)
			}
		}
		if len(winners) != 1 {
			t.Errorf("%d concurrent %s: %d winners %v, want exactly 1", n, c, len(winners), winners)
		}
	}
}

func testOneTimeKinds(t *testing.T, s store.Store) {
	ctx := t.Context()
	challenge := oneTime("shared", "int-1", t0.Add(time.Hour))
	challenge.Data = []byte("challenge")
	nonce := oneTime("shared", "int-1", t0.Add(time.Hour))
	nonce.Data = []byte("nonce")
	must(t, call("PutOneTime", store.KindChallenge, "shared"), s.PutOneTime(ctx, store.KindChallenge, challenge))
	must(t, call("PutOneTime", store.KindNonce, "shared"), s.PutOneTime(ctx, store.KindNonce, nonce))

	_, err := s.ConsumeOneTime(ctx, store.KindChallenge, "shared", t0)
	must(t, call("ConsumeOneTime", store.KindChallenge, "shared", t0), err)
	got, err := s.ConsumeOneTime(ctx, store.KindNonce, "shared", t0)
	must(t, call("ConsumeOneTime", store.KindNonce, "shared", t0)+" after consuming the challenge", err)
	if string(got.Data) != "nonce" {
		t.Errorf("%s.Data = %q, want %q", call("ConsumeOneTime", store.KindNonce, "shared", t0), got.Data, "nonce")
	}

	must(t, call("PutOneTime", store.KindNonce, "nonce-only"), s.PutOneTime(ctx, store.KindNonce, oneTime("nonce-only", "", t0.Add(time.Hour))))
	_, err = s.GetOneTime(ctx, store.KindChallenge, "nonce-only")
	wantErr(t, call("GetOneTime", store.KindChallenge, "nonce-only"), err, store.ErrNotFound)
	_, err = s.ConsumeOneTime(ctx, store.KindChallenge, "nonce-only", t0)
	wantErr(t, call("ConsumeOneTime", store.KindChallenge, "nonce-only", t0), err, store.ErrNotFound)
	if _, err := s.GetOneTime(ctx, store.KindNonce, "nonce-only"); err != nil {
		t.Errorf("GetOneTime(%q, %q) = %v, want nil", store.KindNonce, "nonce-only", err)
	}
}

func testCountOneTime(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0.Add(10 * time.Minute)
	put := func(kind string, v *store.OneTime) {
		t.Helper()
		must(t, call("PutOneTime", kind, v.Key), s.PutOneTime(ctx, kind, v))
	}
	put(store.KindChallenge, oneTime("a-live-1", "int-a", now.Add(time.Minute)))
	put(store.KindChallenge, oneTime("a-live-2", "int-a", now.Add(time.Hour)))
	put(store.KindChallenge, oneTime("a-used", "int-a", now.Add(time.Hour)))
	put(store.KindChallenge, oneTime("a-expired", "int-a", now.Add(-time.Minute)))
	put(store.KindChallenge, oneTime("a-expires-now", "int-a", now)) // ExpiresAt <= now: expired
	put(store.KindChallenge, oneTime("b-live", "int-b", now.Add(time.Hour)))
	put(store.KindNonce, oneTime("a-nonce", "int-a", now.Add(time.Hour)))
	_, err := s.ConsumeOneTime(ctx, store.KindChallenge, "a-used", t0)
	must(t, call("ConsumeOneTime", store.KindChallenge, "a-used", t0), err)

	tests := []struct {
		kind, owner string
		now         time.Time
		want        int
	}{
		{store.KindChallenge, "int-a", now, 2},
		{store.KindChallenge, "int-b", now, 1},
		{store.KindChallenge, "int-c", now, 0},
		{store.KindNonce, "int-a", now, 1},
		{store.KindNonce, "int-b", now, 0},
		{store.KindChallenge, "int-a", now.Add(time.Minute), 1},  // a-live-1 expires
		{store.KindChallenge, "int-a", now.Add(-time.Minute), 3}, // a-expires-now was alive; a-expired expires at exactly this now
	}
	for _, tc := range tests {
		n, err := s.CountOneTime(ctx, tc.kind, tc.owner, tc.now)
		if err != nil || n != tc.want {
			t.Errorf("CountOneTime(%q, %q, %v) = %d, %v, want %d, nil", tc.kind, tc.owner, tc.now, n, err, tc.want)
		}
	}

	_, err = s.ConsumeOneTime(ctx, store.KindChallenge, "a-live-2", now)
	must(t, call("ConsumeOneTime", store.KindChallenge, "a-live-2", now), err)
	if n, err := s.CountOneTime(ctx, store.KindChallenge, "int-a", now); err != nil || n != 1 {
		t.Errorf("CountOneTime(%q, %q, %v) after a consume = %d, %v, want 1, nil", store.KindChallenge, "int-a", now, n, err)
	}
}

func testSweepOneTime(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0.Add(2 * time.Minute)
	put := func(kind string, v *store.OneTime) {
		t.Helper()
		must(t, call("PutOneTime", kind, v.Key), s.PutOneTime(ctx, kind, v))
	}
	put(store.KindChallenge, oneTime("expired", "int-1", t0.Add(time.Minute)))
	put(store.KindChallenge, oneTime("expires-now-used", "int-1", now))
	put(store.KindChallenge, oneTime("live-used", "int-1", t0.Add(10*time.Minute)))
	put(store.KindChallenge, oneTime("live", "int-1", t0.Add(10*time.Minute)))
	put(store.KindNonce, oneTime("expired-nonce", "", t0.Add(time.Minute)))
	for _, key := range []string{"expires-now-used", "live-used"} {
		_, err := s.ConsumeOneTime(ctx, store.KindChallenge, key, t0)
		must(t, call("ConsumeOneTime", store.KindChallenge, key, t0), err)
	}

	n, err := s.SweepOneTime(ctx, store.KindChallenge, now)
	if err != nil || n != 2 {
		t.Errorf("SweepOneTime(%q, %v) = %d, %v, want 2, nil", store.KindChallenge, now, n, err)
	}
	for _, key := range []string{"expired", "expires-now-used"} {
		_, err := s.GetOneTime(ctx, store.KindChallenge, key)
		wantErr(t, call("GetOneTime", store.KindChallenge, key)+" after sweep", err, store.ErrNotFound)
		_, err = s.ConsumeOneTime(ctx, store.KindChallenge, key, t0)
		wantErr(t, call("ConsumeOneTime", store.KindChallenge, key, t0)+" after sweep", err, store.ErrNotFound)
	}
	// A used value that has not expired stays, so a replay is still ErrUsed.
	_, err = s.ConsumeOneTime(ctx, store.KindChallenge, "live-used", now)
	wantErr(t, call("ConsumeOneTime", store.KindChallenge, "live-used", now)+" after sweep", err, store.ErrUsed)
	if _, err := s.GetOneTime(ctx, store.KindChallenge, "live"); err != nil {
		t.Errorf("GetOneTime(%q, %q) after sweep = %v, want nil", store.KindChallenge, "live", err)
	}
	// Another kind is swept on its own.
	if _, err := s.GetOneTime(ctx, store.KindNonce, "expired-nonce"); err != nil {
		t.Errorf("GetOneTime(%q, %q) after sweeping challenges = %v, want nil", store.KindNonce, "expired-nonce", err)
	}
	if n, err := s.SweepOneTime(ctx, store.KindChallenge, now); err != nil || n != 0 {
		t.Errorf("SweepOneTime(%q, %v) again = %d, %v, want 0, nil", store.KindChallenge, now, n, err)
	}
	if n, err := s.SweepOneTime(ctx, store.KindNonce, now); err != nil || n != 1 {
		t.Errorf("SweepOneTime(%q, %v) = %d, %v, want 1, nil", store.KindNonce, now, n, err)
	}
}

func testRedeemOneTime(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, call("PutOneTime", store.KindChallenge, "r1"), s.PutOneTime(ctx, store.KindChallenge, oneTime("r1", "int-1", t0.Add(5*time.Minute))))
	a, b := []byte("tx-a"), []byte("tx-b")
	at := t0.Add(time.Minute)
	got, err := s.RedeemOneTime(ctx, store.KindChallenge, "r1", a, at)
	must(t, call("RedeemOneTime", "r1", "tx-a", at), err)
	if string(got.Binding) != "tx-a" || !got.UsedAt.Equal(at) {
		t.Errorf("%s = binding %q used %v, want %q at %v", call("RedeemOneTime", "r1", "tx-a", at), got.Binding, got.UsedAt, a, at)
	}
	// The same redeemer may retry, even after expiry (until swept).
	for _, when := range []time.Time{t0.Add(2 * time.Minute), t0.Add(time.Hour)} {
		_, err := s.RedeemOneTime(ctx, store.KindChallenge, "r1", a, when)
		must(t, call("RedeemOneTime", "r1", "tx-a", when)+" again", err)
	}
	_, err = s.RedeemOneTime(ctx, store.KindChallenge, "r1", b, at)
	wantErr(t, call("RedeemOneTime", "r1", "tx-b", at), err, store.ErrUsed)
	_, err = s.ConsumeOneTime(ctx, store.KindChallenge, "r1", at)
	wantErr(t, call("ConsumeOneTime", "r1", at)+" after redeem", err, store.ErrUsed)
	_, err = s.RedeemOneTime(ctx, store.KindChallenge, "missing", a, at)
	wantErr(t, call("RedeemOneTime", "missing", "tx-a", at), err, store.ErrNotFound)

	must(t, call("PutOneTime", store.KindChallenge, "r2"), s.PutOneTime(ctx, store.KindChallenge, oneTime("r2", "int-1", t0.Add(5*time.Minute))))
	_, err = s.RedeemOneTime(ctx, store.KindChallenge, "r2", a, t0.Add(5*time.Minute))
	wantErr(t, call("RedeemOneTime", "r2", "tx-a", "at expiry"), err, store.ErrExpired)

	// Racing redeemers with distinct bindings: exactly one wins, and only
	// the winner may redeem again.
	const n = 50
	must(t, call("PutOneTime", store.KindChallenge, "race"), s.PutOneTime(ctx, store.KindChallenge, oneTime("race", "int-1", t0.Add(5*time.Minute))))
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = s.RedeemOneTime(ctx, store.KindChallenge, "race", fmt.Appendf(nil, "tx-%d", i), at)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("RedeemOneTime(race): redeemers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrUsed):
			t.Errorf("RedeemOneTime(race) redeemer %d = %v, want nil or %v", i, err, store.ErrUsed)
		}
	}
	if winner < 0 {
		t.Fatal("RedeemOneTime(race): no winner")
	}
	_, err = s.RedeemOneTime(ctx, store.KindChallenge, "race", fmt.Appendf(nil, "tx-%d", winner), at)
	must(t, call("RedeemOneTime", "race", "winner again", at), err)
}
