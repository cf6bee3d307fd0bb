package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/scepca/scepca/internal/etcdtest"
)

// TestServeEtcdTLS: `serve --store etcd` with --etcd-ca, --etcd-cert and
// --etcd-key against an etcd that requires client certificates, and the
// same through SCEPCA_* variables; /readyz's store check passes.
func TestServeEtcdTLS(t *testing.T) {
	t.Parallel()
	srv, files := etcdtest.StartTLS(t)
	clientCert, clientKeyFile := files.Cert, files.Key
	ep := strings.Join(srv.Endpoints, ",")

	s := startServer(t, "--store", "etcd", "--etcd-endpoints", ep, "--etcd-prefix", "/tls-flags/",
		"--etcd-ca", files.CA, "--etcd-cert", clientCert, "--etcd-key", clientKeyFile)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"store":"ok"`) {
		t.Errorf("GET /readyz on etcd over TLS = %d %s, want 200 with the store ok", resp.StatusCode, body)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	// The same configuration from the environment, as a container gets it.
	var out, errOut strings.Builder
	env := testEnv("SCEPCA_STORE", "etcd", "SCEPCA_ETCD_ENDPOINTS", ep, "SCEPCA_ETCD_PREFIX", "/tls-flags/",
		"SCEPCA_ETCD_CA", files.CA, "SCEPCA_ETCD_CERT", clientCert, "SCEPCA_ETCD_KEY", clientKeyFile)
	if err := run(t.Context(), []string{"ca", "remove-root-key", "--data", s.Data, "--dev"}, env, &out, &errOut); err != nil {
		t.Errorf("scepca ca remove-root-key with SCEPCA_ETCD_* = %v\n%s", err, errOut.String())
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unknown store", []string{"--store", "mysql"}},
		{"etcd without endpoints", []string{"--store", "etcd"}},
		{"certificate without key", []string{"--store", "etcd", "--etcd-endpoints", ep, "--etcd-cert", clientCert}},
		{"without a client certificate", []string{"--store", "etcd", "--etcd-endpoints", ep, "--etcd-ca", files.CA}},
	} {
		args := append([]string{"init", "--data", t.TempDir(), "--dev"}, tc.args...)
		if err := run(t.Context(), args, testEnv(), io.Discard, io.Discard); err == nil {
			t.Errorf("scepca init %s = nil, want an error", tc.name)
		}
	}
}
