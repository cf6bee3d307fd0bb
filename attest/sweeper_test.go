package attest_test

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
)

// TestSweeperUnused: PROTOCOLS.md §5 item 19: a certificate not used in a
// successful attestation within 90 days is revoked on day 91
// (cessationOfOperation), counted from issuance or its last use; used ones
// and disabled sweeps keep theirs; each revocation is logged.
func TestSweeperUnused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := t.Context()
	unusedKey, usedKey := testpki.NewECKey(t, elliptic.P256()), testpki.NewECKey(t, elliptic.P384())
	unused := f.issue(t, unusedKey, "unused")
	used := f.issue(t, usedKey, "used")
	serial := func(c interface{ Text(int) string }) string { return strings.ToUpper(c.Text(16)) }

	var audit bytes.Buffer
	sw, err := attest.NewSweeper(attest.SweeperConfig{Store: f.db, Nonces: f.nonces, Now: f.clock.Now, Audit: slog.New(slog.NewJSONHandler(&audit, nil))})
	if err != nil {
		t.Fatal(err)
	}
	status := func(s string) *store.Certificate {
		c, err := f.db.GetCertificate(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	f.clock.Add(60 * 24 * time.Hour) // day 60: the used one attests
	wantReason(t, "Verify(day 60)", f.verify(t, f.desktopProof(t, usedKey, used, "used-device", "")), attest.ReasonManaged)

	f.clock.Add(30*24*time.Hour - time.Second) // a second before day 90
	res, err := sw.Sweep(ctx)
	if err != nil || len(res.Revoked) != 0 {
		t.Fatalf("Sweep(day 90 - 1s) = %+v, %v, want nothing revoked", res, err)
	}
	f.clock.Add(time.Second) // 90 days after issuance
	res, err = sw.Sweep(ctx)
	if err != nil || !slices.Equal(res.Revoked, []string{serial(unused.SerialNumber)}) {
		t.Fatalf("Sweep(day 90) = %+v, %v, want only the unused certificate revoked", res, err)
	}
	if c := status(serial(unused.SerialNumber)); c.Status != store.CertRevoked || c.RevocationReason != attest.ReasonCessationOfOperation || !c.RevokedAt.Equal(f.clock.Now()) {
		t.Errorf("unused certificate = %s reason %d at %v, want REVOKED, cessationOfOperation, now", c.Status, c.RevocationReason, c.RevokedAt)
	}
	if c := status(serial(used.SerialNumber)); c.Status != store.CertIssued {
		t.Errorf("certificate used on day 60 = %s on day 90, want ISSUED", c.Status)
	}
	if !strings.Contains(audit.String(), `"msg":"certificate.revoke"`) || !strings.Contains(audit.String(), serial(unused.SerialNumber)) {
		t.Errorf("audit log = %s, want a certificate.revoke event naming the serial", audit.String())
	}
	wantReason(t, "Verify(revoked as unused)", f.verify(t, f.desktopProof(t, unusedKey, unused, "late", "")), attest.ReasonCertRevoked)

	// The used one goes 90 days after its last use.
	f.clock.Add(60 * 24 * time.Hour)
	res, err = sw.Sweep(ctx)
	if err != nil || !slices.Equal(res.Revoked, []string{serial(used.SerialNumber)}) {
		t.Errorf("Sweep(90 days after the last use) = %+v, %v, want the used certificate revoked", res, err)
	}

	// A negative MaxUnused disables the revocation.
	g := newFixture(t, "")
	g.issue(t, unusedKey, "kept")
	off, err := attest.NewSweeper(attest.SweeperConfig{Store: g.db, MaxUnused: -1, Now: g.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	g.clock.Add(200 * 24 * time.Hour)
	if res, err := off.Sweep(ctx); err != nil || len(res.Revoked) != 0 {
		t.Errorf("Sweep(disabled) = %+v, %v, want nothing revoked", res, err)
	}
}

// TestSweeperRun: Run sweeps at once and at every interval until its
// context ends (a synctest bubble: no wall-clock waits).
func TestSweeperRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := &countingSweepStore{}
		sw, err := attest.NewSweeper(attest.SweeperConfig{Store: st, Interval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- sw.Run(ctx) }()
		synctest.Wait()
		if n := st.sweeps.Load(); n != 1 {
			t.Errorf("sweeps at start = %d, want 1", n)
		}
		<-time.After(3 * time.Minute) // fake time: the bubble advances it at once
		synctest.Wait()
		if n := st.sweeps.Load(); n != 4 {
			t.Errorf("sweeps after 3 intervals = %d, want 4", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v after cancel, want nil", err)
		}
	})
}

type countingSweepStore struct{ sweeps atomic.Int32 }

func (s *countingSweepStore) ListCertificates(context.Context, store.CertFilter) ([]*store.Certificate, error) {
	s.sweeps.Add(1)
	return nil, nil
}
func (s *countingSweepStore) UpdateCertificateStatus(context.Context, string, string, time.Time, int) error {
	return nil
}
func (s *countingSweepStore) ListBindings(context.Context) ([]*store.Binding, error) { return nil, nil }
func (s *countingSweepStore) GetBinding(context.Context, string) (*store.Binding, error) {
	return nil, store.ErrNotFound
}
