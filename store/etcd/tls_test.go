package etcd_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/etcdtest"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/etcd"
)

// TestTLSClientCertificate: against an etcd that serves TLS and requires
// client certificates, the store works with TLSConfig's client
// certificate, and is refused without one or without TLS.
func TestTLSClientCertificate(t *testing.T) {
	t.Parallel()
	srv, files := etcdtest.StartTLS(t)
	clientCert, clientKeyFile := files.Cert, files.Key

	tc, err := etcd.TLSConfig(files.CA, clientCert, clientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := etcd.Open(t.Context(), etcd.Config{Endpoints: srv.Endpoints, Prefix: "/tls/", TLS: tc})
	if err != nil {
		t.Fatalf("Open with a client certificate = %v, want nil", err)
	}
	defer s.Close()
	if err := s.CheckWritable(t.Context()); err != nil {
		t.Errorf("CheckWritable() = %v, want nil", err)
	}
	if err := s.CreateIntegration(t.Context(), &store.Integration{ID: "tls"}); err != nil {
		t.Errorf("CreateIntegration over TLS = %v, want nil", err)
	}

	noCert, err := etcd.TLSConfig(files.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]etcd.Config{
		"without a client certificate": {Endpoints: srv.Endpoints, TLS: noCert, DialTimeout: 2 * time.Second},
		"without TLS":                  {Endpoints: srv.Endpoints, DialTimeout: 2 * time.Second},
	} {
		if s, err := etcd.Open(t.Context(), tc); err == nil {
			_ = s.Close()
			t.Errorf("Open %s = nil, want an error", name)
		}
	}

	for name, args := range map[string][3]string{
		"certificate without key": {files.CA, clientCert, ""},
		"missing CA file":         {filepath.Join(t.TempDir(), "none.pem"), "", ""},
		"CA file without PEM":     {clientKeyFile, "", ""},
	} {
		if _, err := etcd.TLSConfig(args[0], args[1], args[2]); err == nil {
			t.Errorf("TLSConfig with %s = nil error, want one", name)
		}
	}
}
