package etcd

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scepca/scepca/internal/etcdtest"
	"github.com/scepca/scepca/store"
)

func openTest(t *testing.T, srv *etcdtest.Server, prefix string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Endpoints: srv.Endpoints, Prefix: prefix})
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", prefix, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStoreInternals covers what the conformance suite cannot see: the
// prefix, the schema check, leases as garbage collection and the lock.
func TestStoreInternals(t *testing.T) {
	srv := etcdtest.Start(t)
	base := "/scepca-internal-" + rand.Text()

	t.Run("Prefix", func(t *testing.T) {
		t.Parallel()
		a := openTest(t, srv, base+"/a") // a trailing slash is added
		b := openTest(t, srv, base+"/b/")
		if a.Prefix() != base+"/a/" {
			t.Errorf("Prefix() = %q, want %q", a.Prefix(), base+"/a/")
		}
		for _, s := range []*Store{a, b} {
			if err := s.CreateIntegration(t.Context(), &store.Integration{ID: "same", Name: s.Prefix()}); err != nil {
				t.Fatalf("CreateIntegration in %s = %v", s.Prefix(), err)
			}
		}
		for _, s := range []*Store{a, b} {
			list, err := s.ListIntegrations(t.Context())
			if err != nil || len(list) != 1 || list[0].Name != s.Prefix() {
				t.Errorf("ListIntegrations in %s = %+v, %v, want its own one", s.Prefix(), list, err)
			}
		}
	})

	t.Run("Schema", func(t *testing.T) {
		t.Parallel()
		s := openTest(t, srv, base+"/schema/")
		if _, err := s.cli.Put(t.Context(), s.prefix+famMeta+"schema", "99"); err != nil {
			t.Fatal(err)
		}
		if other, err := Open(t.Context(), Config{Endpoints: srv.Endpoints, Prefix: s.prefix}); err == nil || !strings.Contains(err.Error(), "unsupported schema") {
			if other != nil {
				_ = other.Close()
			}
			t.Errorf("Open on a prefix of schema 99 = %v, want unsupported schema", err)
		}
		for _, cfg := range []Config{{}, {Endpoints: []string{" "}}} {
			if _, err := Open(t.Context(), cfg); err == nil {
				t.Errorf("Open(%+v) = nil error, want one", cfg)
			}
		}
	})

	t.Run("Leases", func(t *testing.T) {
		t.Parallel()
		s := openTest(t, srv, base+"/leases/")
		ctx := t.Context()
		exp := time.Now().Add(5 * time.Minute)
		put := func(key string) *clientv3.LeaseTimeToLiveResponse {
			t.Helper()
			if err := s.PutOneTime(ctx, store.KindNonce, &store.OneTime{Key: key, ExpiresAt: exp}); err != nil {
				t.Fatalf("PutOneTime(%q) = %v", key, err)
			}
			kv, err := s.get(ctx, s.prefix+famOneTime+store.KindNonce+"\x00"+key)
			if err != nil || kv == nil || kv.Lease == 0 {
				t.Fatalf("stored %q = %+v, %v, want it under a lease", key, kv, err)
			}
			ttl, err := s.cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
			if err != nil {
				t.Fatal(err)
			}
			// It outlives the expiry by the grace, and not by much more.
			if left := time.Duration(ttl.TTL) * time.Second; left < time.Until(exp)+leaseGrace-time.Minute || left > time.Until(exp)+leaseGrace+leaseBucket {
				t.Errorf("lease of %q has %v left, want about %v", key, left, time.Until(exp)+leaseGrace)
			}
			return ttl
		}
		first := put("n1")
		if second := put("n2"); second.ID != first.ID {
			t.Errorf("values expiring together got leases %x and %x, want one shared", first.ID, second.ID)
		}
		// The lease is the garbage collector: when it ends, its values go.
		if _, err := s.cli.Revoke(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetOneTime(ctx, store.KindNonce, "n1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetOneTime after its lease ended = %v, want %v", err, store.ErrNotFound)
		}
		// A put that meets the dead lease grants a fresh one.
		if third := put("n3"); third.ID == first.ID {
			t.Errorf("put after the lease ended reused lease %x", first.ID)
		}
		// Values long expired (in the injected clock's past) get no lease:
		// the sweep deletes them.
		if err := s.PutOneTime(ctx, store.KindNonce, &store.OneTime{Key: "old", ExpiresAt: time.Now().Add(-2 * leaseGrace)}); err != nil {
			t.Fatal(err)
		}
		if kv, err := s.get(ctx, s.prefix+famOneTime+store.KindNonce+"\x00old"); err != nil || kv == nil || kv.Lease != 0 {
			t.Errorf("stored old = %+v, %v, want it without a lease", kv, err)
		}
	})

	t.Run("Lock", func(t *testing.T) {
		t.Parallel()
		a := openTest(t, srv, base+"/lock/")
		b := openTest(t, srv, base+"/lock/")
		unlock, err := a.Lock(t.Context(), "ca-init")
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if u, err := b.Lock(short, "ca-init"); !errors.Is(err, context.DeadlineExceeded) {
			if u != nil {
				_ = u(t.Context())
			}
			t.Fatalf("Lock while held = %v, want %v", err, context.DeadlineExceeded)
		}
		if err := unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
		u, err := b.Lock(t.Context(), "ca-init")
		if err != nil {
			t.Fatalf("Lock after unlock = %v", err)
		}
		if err := u(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStatusIndex: the status index follows every status change, repeats
// included, so a listing by status (the CRL's) reads only its certificates.
func TestStatusIndex(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openTest(t, srv, "/scepca-status-"+rand.Text()+"/")
	ctx := t.Context()
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, serial := range []string{"0A", "0B", "0C"} {
		if err := s.PutCertificate(ctx, &store.Certificate{Serial: serial, Status: store.CertIssued, IssuedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct{ serial, status string }{
		{"0A", store.CertRevoked}, {"0B", store.CertOnHold}, {"0B", store.CertIssued}, {"0C", store.CertOnHold}, {"0C", store.CertOnHold},
	} {
		if err := s.UpdateCertificateStatus(ctx, u.serial, u.status, at, 1); err != nil {
			t.Fatalf("UpdateCertificateStatus(%s, %s) = %v", u.serial, u.status, err)
		}
	}
	// A refused change (revocation is final) leaves the index alone.
	if err := s.UpdateCertificateStatus(ctx, "0A", store.CertOnHold, at, 6); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateCertificateStatus(0A, ON_HOLD) after revocation = %v, want ErrConflict", err)
	}
	for status, want := range map[string]string{store.CertIssued: "0B", store.CertRevoked: "0A", store.CertOnHold: "0C"} {
		resp, err := s.cli.Get(ctx, s.statusKey(status, ""), clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != want {
			t.Errorf("status index %s = %v, want only %s", status, resp.Kvs, want)
		}
	}
}
