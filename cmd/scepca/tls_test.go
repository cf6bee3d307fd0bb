package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeServerCert writes a fresh self-signed certificate for 127.0.0.1 and
// its key to certFile and keyFile, and returns the certificate.
func writeServerCert(t *testing.T, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// peerCN opens a new TLS connection to addr and returns the server
// certificate's common name.
func peerCN(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName
}

// get GETs url with client and reports the server certificate's common name
// and whether the connection was reused.
func tlsGet(t *testing.T, client *http.Client, url string) (cn string, reused bool) {
	t.Helper()
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil { // read to the end, so the connection is kept
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0].Subject.CommonName, reused
}

// TestServeTLSReload: a server started with certificate A serves A; after
// the files are rewritten with B, a new handshake sees B while a keep-alive
// connection made before goes on working; a half-written pair keeps B.
func TestServeTLSReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	a := writeServerCert(t, certFile, keyFile, "cert A")
	s := startServer(t, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") || !strings.HasPrefix(s.SCEPURL, "https://") {
		t.Fatalf("public URL %q, SCEP URL %q, want https:// by default with TLS", s.URL, s.SCEPURL)
	}
	addr := strings.TrimPrefix(s.URL, "https://")
	roots := x509.NewCertPool()
	roots.AddCert(a)
	keepAlive := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	defer keepAlive.CloseIdleConnections()
	if cn, _ := tlsGet(t, keepAlive, s.URL+"/healthz"); cn != "cert A" {
		t.Fatalf("first GET saw %q, want cert A", cn)
	}

	b := writeServerCert(t, certFile, keyFile, "cert B")
	roots.AddCert(b)
	if cn := peerCN(t, addr, roots); cn != "cert B" {
		t.Errorf("new handshake after rewrite saw %q, want cert B", cn)
	}
	cn, reused := tlsGet(t, keepAlive, s.URL+"/healthz")
	if cn != "cert A" || !reused {
		t.Errorf("keep-alive GET after rewrite: cert %q, reused %v; want cert A on the reused connection", cn, reused)
	}

	// Only the certificate rewritten, with garbage: B stays in service.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cn := peerCN(t, addr, roots); cn != "cert B" {
		t.Errorf("handshake after a broken rewrite saw %q, want cert B", cn)
	}
	if !strings.Contains(s.Stderr.String(), "does not load") {
		t.Errorf("no warning logged for the broken keypair\n%s", s.Stderr.String())
	}
}

func TestCheckPlainHTTP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr     string
		insecure bool
		ok       bool
	}{
		{"127.0.0.1:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"127.0.0.2:8080", false, true},
		{":8080", false, false},
		{"0.0.0.0:8080", false, false},
		{"10.1.2.3:8080", false, false},
		{"scepca.example.com:80", false, false},
		{"0.0.0.0:8080", true, true},
		{"bogus", false, false},
	} {
		err := checkPlainHTTP(tc.addr, tc.insecure)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errPlainHTTP)) {
			t.Errorf("checkPlainHTTP(%q, %v) = %v, want ok=%v", tc.addr, tc.insecure, err, tc.ok)
		}
	}
}

// TestServeTLSErrors: serve refuses to start on bad TLS settings and on
// plain HTTP beyond loopback, before it opens anything.
func TestServeTLSErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeServerCert(t, certFile, keyFile, "cert")
	otherCert, otherKey := filepath.Join(dir, "other.crt"), filepath.Join(dir, "other.key")
	writeServerCert(t, otherCert, otherKey, "other")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--listen", "127.0.0.1:0", "--tls-cert", certFile}, "--tls-cert and --tls-key go together"},
		{"missing cert file", []string{"--listen", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "nope"), "--tls-key", keyFile}, "--tls-cert: stat"},
		{"mismatched pair", []string{"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", otherKey}, "private key does not match public key"},
		{"plain HTTP on every interface", []string{"--listen", ":0"}, "refusing plain HTTP"},
		{"plain HTTP metrics on every interface", []string{"--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:0"}, "refusing plain HTTP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve", "--dev", "--data", t.TempDir()}, tc.args...)
			var out, errOut syncBuffer
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // a server that did start would stop at once
			err := run(ctx, args, testEnv(), &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("serve %v = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
