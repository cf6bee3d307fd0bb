package attest_test

import (
	"encoding/base64"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/store/bolt"
)

// TestNonces: 256 random bits, base64url; consumed once; unknown, used and
// expired apart; expiry on the injected clock; single use survives a
// reopen of the store (the consume is durable before it returns).
func TestNonces(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "scepca.db")
	db, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	n, err := attest.NewNonces(db, 0, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	a, err := n.Mint(ctx)
	if err != nil {
		t.Fatalf("Mint() = %v", err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(a.Value); err != nil || len(raw) != 32 {
		t.Errorf("Mint() = %q, want base64url of 32 bytes (%v)", a.Value, err)
	}
	if !a.ExpiresAt.Equal(c.Now().Add(attest.DefaultNonceTTL)) {
		t.Errorf("Mint().ExpiresAt = %v, want now + %v", a.ExpiresAt, attest.DefaultNonceTTL)
	}
	b, err := n.Mint(ctx)
	if err != nil || b.Value == a.Value {
		t.Fatalf("Mint() again = %v, %v, want a new nonce", b, err)
	}

	if err := n.Consume(ctx, a.Value); err != nil {
		t.Errorf("Consume(a) = %v, want nil", err)
	}
	if err := n.Consume(ctx, a.Value); !errors.Is(err, attest.ErrNonceUsed) {
		t.Errorf("Consume(a) again = %v, want %v", err, attest.ErrNonceUsed)
	}
	for _, bad := range []string{"", "short", base64.RawURLEncoding.EncodeToString(make([]byte, 32)), a.Value[:42] + "!", a.Value + "A"} {
		if err := n.Consume(ctx, bad); !errors.Is(err, attest.ErrNonceUnknown) {
			t.Errorf("Consume(%q) = %v, want %v", bad, err, attest.ErrNonceUnknown)
		}
	}

	// Expiry is at the TTL, on the injected clock.
	c.Add(attest.DefaultNonceTTL - time.Second)
	d, err := n.Mint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second)
	if err := n.Consume(ctx, b.Value); !errors.Is(err, attest.ErrNonceExpired) {
		t.Errorf("Consume(b) at its TTL = %v, want %v", err, attest.ErrNonceExpired)
	}

	// A restart: the used nonce stays used, the unused one usable once.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if n, err = attest.NewNonces(db, 0, c.Now); err != nil {
		t.Fatal(err)
	}
	if err := n.Consume(ctx, a.Value); !errors.Is(err, attest.ErrNonceUsed) {
		t.Errorf("Consume(a) after a restart = %v, want %v", err, attest.ErrNonceUsed)
	}
	if err := n.Consume(ctx, d.Value); err != nil {
		t.Errorf("Consume(d) after a restart = %v, want nil", err)
	}
}

// TestNoncesConcurrent: many consumers of one nonce, one winner.
func TestNoncesConcurrent(t *testing.T) {
	t.Parallel()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	n, err := attest.NewNonces(db, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := n.Mint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range 50 {
		wg.Go(func() {
			switch err := n.Consume(t.Context(), nonce.Value); {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, attest.ErrNonceUsed):
				t.Errorf("Consume() = %v, want nil or %v", err, attest.ErrNonceUsed)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("50 concurrent Consume() = %d winners, want 1", wins)
	}
}

func TestNewNoncesConfig(t *testing.T) {
	t.Parallel()
	if _, err := attest.NewNonces(nil, 0, nil); err == nil {
		t.Error("NewNonces(nil store) = nil error, want one")
	}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	for _, ttl := range []time.Duration{-time.Second, 2 * time.Hour} {
		if _, err := attest.NewNonces(db, ttl, nil); err == nil {
			t.Errorf("NewNonces(TTL %v) = nil error, want one", ttl)
		}
	}
}
