package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

type storeCall struct{ op, result string }

// recordedStore returns a metered bbolt store in a temporary directory and
// the calls it observed.
func recordedStore(t *testing.T) (meteredStore, func() []storeCall) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var mu sync.Mutex
	var calls []storeCall
	s := meteredStore{Store: db, observe: func(op, result string, d time.Duration) {
		if d < 0 {
			t.Errorf("%s took %v", op, d)
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, storeCall{op, result})
	}}
	return s, func() []storeCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]storeCall(nil), calls...)
	}
}

// TestMeteredStore: each call through the decorator is observed once with
// its method name and the result class of the store's sentinel error, and
// the store's answers pass through unchanged.
func TestMeteredStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, calls := recordedStore(t)
	now := time.Now()
	if _, err := s.GetIntegration(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetIntegration(nope) = %v, want ErrNotFound", err)
	}
	ot := &store.OneTime{Key: "k1", Owner: "i1", ExpiresAt: now.Add(time.Hour)}
	if err := s.PutOneTime(ctx, store.KindChallenge, ot); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOneTime(ctx, store.KindChallenge, ot); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second PutOneTime = %v, want ErrExists", err)
	}
	if _, err := s.ConsumeOneTime(ctx, store.KindChallenge, "k1", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeOneTime(ctx, store.KindChallenge, "k1", now); !errors.Is(err, store.ErrUsed) {
		t.Fatalf("second ConsumeOneTime = %v, want ErrUsed", err)
	}
	if n, err := s.CountOneTime(ctx, store.KindChallenge, "i1", now); err != nil || n != 0 {
		t.Fatalf("CountOneTime = %d, %v, want 0, nil", n, err)
	}
	want := []storeCall{
		{"GetIntegration", "not_found"},
		{"PutOneTime", "ok"},
		{"PutOneTime", "exists"},
		{"ConsumeOneTime", "ok"},
		{"ConsumeOneTime", "used"},
		{"CountOneTime", "ok"},
	}
	if diff := cmp.Diff(want, calls(), cmp.AllowUnexported(storeCall{})); diff != "" {
		t.Errorf("observed calls (-want +got):\n%s", diff)
	}
}

func TestStoreResult(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{fmt.Errorf("bolt: get x: %w", store.ErrNotFound), "not_found"},
		{store.ErrExists, "exists"},
		{store.ErrExpired, "expired"},
		{store.ErrUsed, "used"},
		{store.ErrConflict, "conflict"},
		{fmt.Errorf("bolt: %w", context.DeadlineExceeded), "canceled"},
		{errors.New("disk full"), "error"},
	} {
		if got := storeResult(tc.err); got != tc.want {
			t.Errorf("storeResult(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestExpiringCounter counts issued certificates expiring within 30 days
// from a real bbolt store, and caches the count for its TTL.
func TestExpiringCounter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := recordedStore(t)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i, c := range []struct {
		notAfter time.Time
		status   string
	}{
		{now.Add(24 * time.Hour), store.CertIssued},      // counted
		{now.Add(29 * 24 * time.Hour), store.CertIssued}, // counted
		{now.Add(31 * 24 * time.Hour), store.CertIssued}, // later
		{now.Add(-time.Hour), store.CertIssued},          // already expired
		{now.Add(24 * time.Hour), store.CertRevoked},     // revoked
		{now.Add(2 * 24 * time.Hour), store.CertOnHold},  // on hold
	} {
		cert := &store.Certificate{Serial: fmt.Sprintf("%X", 0x100+i), CAID: "ca", IntegrationID: "i1", Subject: "CN=x",
			NotBefore: now.Add(-48 * time.Hour), NotAfter: c.notAfter, IssuedAt: now.Add(time.Duration(i) * time.Second), Status: c.status, DER: []byte{0x30}}
		if err := s.PutCertificate(ctx, cert); err != nil {
			t.Fatalf("PutCertificate(%s) = %v", cert.Serial, err)
		}
	}
	clock := now
	c := &expiringCounter{certs: s, ttl: time.Minute, now: func() time.Time { return clock }}
	if got := c.Value(); got != 2 {
		t.Errorf("Value() = %v, want 2", got)
	}
	extra := &store.Certificate{Serial: "1FF", CAID: "ca", IntegrationID: "i1", Subject: "CN=y", NotBefore: now, NotAfter: now.Add(time.Hour), IssuedAt: now.Add(time.Minute), Status: store.CertIssued, DER: []byte{0x30}}
	if err := s.PutCertificate(ctx, extra); err != nil {
		t.Fatal(err)
	}
	if got := c.Value(); got != 2 {
		t.Errorf("Value() within the TTL = %v, want the cached 2", got)
	}
	clock = clock.Add(2 * time.Minute)
	if got := c.Value(); got != 3 {
		t.Errorf("Value() after the TTL = %v, want 3", got)
	}
}
