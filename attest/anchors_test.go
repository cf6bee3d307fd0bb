package attest_test

import (
	"context"
	"crypto/elliptic"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
)

// countingCAs counts ListCAs calls.
type countingCAs struct {
	attest.CAReader
	n atomic.Int32
}

func (c *countingCAs) ListCAs(ctx context.Context) ([]*store.CA, error) {
	c.n.Add(1)
	return c.CAReader.ListCAs(ctx)
}

// TestAnchors: the CA list is read once per refresh period and at once
// after Invalidate; only active intermediates and uploaded ones are
// trusted; a found issuer is remembered per certificate.
func TestAnchors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := t.Context()
	cas := &countingCAs{CAReader: f.db}
	a, err := attest.NewAnchors(cas, time.Minute, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	issuers, err := a.Issuers(ctx)
	if err != nil || len(issuers) != 1 || issuers[0].ID != f.ca.IntermediateID() || issuers[0].Uploaded {
		t.Fatalf("Issuers() = %+v, %v, want only our intermediate (not the root or the RA)", issuers, err)
	}
	key := testpki.NewECKey(t, elliptic.P256())
	cert := f.issue(t, key, "anchor")
	for range 3 {
		if iss, err := a.Find(ctx, cert); err != nil || iss.ID != f.ca.IntermediateID() {
			t.Fatalf("Find(ours) = %+v, %v, want our intermediate", iss, err)
		}
	}
	if n := cas.n.Load(); n != 1 {
		t.Errorf("ListCAs calls = %d within the refresh period, want 1", n)
	}

	byo := f.uploadBYO(t) // writes the store; a has not been told
	byoCert := byo.issue(t, key.Public(), "byo")
	if _, err := a.Find(ctx, byoCert); !errors.Is(err, attest.ErrUntrusted) {
		t.Errorf("Find(uploaded) before refresh = %v, want %v", err, attest.ErrUntrusted)
	}
	f.clock.Add(time.Minute)
	if iss, err := a.Find(ctx, byoCert); err != nil || iss.ID != byo.id || !iss.Uploaded {
		t.Errorf("Find(uploaded) after refresh = %+v, %v, want the uploaded issuer", iss, err)
	}
	if err := f.db.DeleteCA(ctx, byo.id); err != nil {
		t.Fatal(err)
	}
	a.Invalidate()
	if _, err := a.Find(ctx, byoCert); !errors.Is(err, attest.ErrUntrusted) {
		t.Errorf("Find(uploaded) after delete and Invalidate = %v, want %v (the cached verification is dropped)", err, attest.ErrUntrusted)
	}
	if iss, err := a.Find(ctx, cert); err != nil || iss.ID != f.ca.IntermediateID() {
		t.Errorf("Find(ours) after a reload = %+v, %v, want our intermediate", iss, err)
	}

	// Rotation: a retired intermediate stays trusted, a staged (NEXT) one
	// is not trusted yet, a deleted one no longer.
	rec, err := f.db.GetCA(ctx, f.ca.IntermediateID())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		state   string
		trusted bool
	}{
		{state: store.CAStateRetired, trusted: true},
		{state: store.CAStateNext, trusted: false},
		{state: store.CAStateActive, trusted: true},
	} {
		rec.State, rec.Active = tc.state, tc.state == store.CAStateActive
		if err := f.db.UpdateCA(ctx, rec); err != nil {
			t.Fatal(err)
		}
		a.Invalidate()
		if _, err := a.Find(ctx, cert); (err == nil) != tc.trusted {
			t.Errorf("Find(ours) with the intermediate %s = %v, want trusted %v", tc.state, err, tc.trusted)
		}
	}
	if err := f.db.DeleteCA(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	a.Invalidate()
	if _, err := a.Find(ctx, cert); !errors.Is(err, attest.ErrUntrusted) {
		t.Errorf("Find(ours) after the intermediate is deleted = %v, want %v", err, attest.ErrUntrusted)
	}
}
