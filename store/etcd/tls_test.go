package etcd_test

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/etcdtest"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/etcd"
)

// writePEM writes certificates (and a key) as PEM to dir/name.
func writePEM(t *testing.T, dir, name string, certs []*x509.Certificate, key any) string {
	t.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLSClientCertificate: against an etcd that serves TLS and requires
// client certificates, the store works with TLSConfig's client
// certificate, and is refused without one or without TLS.
func TestTLSClientCertificate(t *testing.T) {
	t.Parallel()
	h := testpki.CA(t)
	dir := t.TempDir()
	serverKey := testpki.RSAKeyN(t, 2048, 1)
	server := h.Issue(t, &serverKey.PublicKey, "etcd", testpki.WithTemplate(func(c *x509.Certificate) {
		c.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}))
	clientKey := testpki.RSAKeyN(t, 2048, 2)
	client := h.Issue(t, &clientKey.PublicKey, "scepca")
	files := &etcdtest.TLSFiles{
		CA:   writePEM(t, dir, "ca.pem", []*x509.Certificate{h.Root}, nil),
		Cert: writePEM(t, dir, "server.pem", []*x509.Certificate{server, h.Intermediate}, nil),
		Key:  writePEM(t, dir, "server-key.pem", nil, serverKey),
	}
	clientCert := writePEM(t, dir, "client.pem", []*x509.Certificate{client, h.Intermediate}, nil)
	clientKeyFile := writePEM(t, dir, "client-key.pem", nil, clientKey)
	srv := etcdtest.StartLocal(t, files)

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
		"missing CA file":         {filepath.Join(dir, "none.pem"), "", ""},
		"CA file without PEM":     {clientKeyFile, "", ""},
	} {
		if _, err := etcd.TLSConfig(args[0], args[1], args[2]); err == nil {
			t.Errorf("TLSConfig with %s = nil error, want one", name)
		}
	}
}
