package etcd_test

import (
	"crypto/rand"
	"testing"

	"github.com/scepca/scepca/internal/etcdtest"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/etcd"
	"github.com/scepca/scepca/store/storetest"
)

// TestConformance runs the storage suite against a real etcd, each subtest
// under a prefix of its own.
func TestConformance(t *testing.T) {
	srv := etcdtest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, srv, prefixFor(t))
	})
}

// prefixFor is a prefix unique to this test and run (an external etcd
// keeps the keys of earlier runs).
func prefixFor(t *testing.T) string {
	return "/scepca-test/" + rand.Text() + "/" + t.Name() + "/"
}

func open(t *testing.T, srv *etcdtest.Server, prefix string) *etcd.Store {
	t.Helper()
	s, err := etcd.Open(t.Context(), etcd.Config{Endpoints: srv.Endpoints, Prefix: prefix})
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", prefix, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}
