package etcdtest

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/scepca/scepca/internal/testpki"
)

// StartTLS starts a local etcd that serves TLS and requires client
// certificates from a fresh test CA, and returns it with the PEM files a
// client needs: the CA, and a client certificate (with its chain) and key.
func StartTLS(t testing.TB) (*Server, *TLSFiles) {
	t.Helper()
	h := testpki.CA(t)
	dir := t.TempDir()
	serverKey := testpki.RSAKeyN(t, 2048, 1)
	server := h.Issue(t, &serverKey.PublicKey, "etcd", testpki.WithTemplate(func(c *x509.Certificate) {
		c.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		// etcd also dials itself with it (its gRPC gateway): clientAuth too.
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}))
	clientKey := testpki.RSAKeyN(t, 2048, 2)
	client := h.Issue(t, &clientKey.PublicKey, "scepca")
	ca := writePEM(t, dir, "ca.pem", []*x509.Certificate{h.Root}, nil)
	srv := StartLocal(t, &TLSFiles{
		CA:   ca,
		Cert: writePEM(t, dir, "server.pem", []*x509.Certificate{server, h.Intermediate}, nil),
		Key:  writePEM(t, dir, "server-key.pem", nil, serverKey),
	})
	return srv, &TLSFiles{
		CA:   ca,
		Cert: writePEM(t, dir, "client.pem", []*x509.Certificate{client, h.Intermediate}, nil),
		Key:  writePEM(t, dir, "client-key.pem", nil, clientKey),
	}
}

// writePEM writes certificates (and a key) as PEM to dir/name.
func writePEM(t testing.TB, dir, name string, certs []*x509.Certificate, key any) string {
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
