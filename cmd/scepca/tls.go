package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
)

// certReloader serves the TLS keypair in certFile and keyFile and reloads it
// when either file changes, so a renewed certificate (cert-manager, certbot,
// a Kubernetes Secret update) takes effect without a restart. Each handshake
// stats both files (two syscalls, no read); only a change of identity, size
// or modification time re-reads and re-parses them. Connections already
// established keep the certificate they negotiated.
//
// A pair that does not load (the certificate written, the key not yet) keeps
// the previous keypair in service and is logged once; the next change of
// either file tries again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded fileState // the files as they were when cert was loaded
	failed fileState // the files as they were at the last failed load
}

// fileState identifies the versions of the certificate and key files.
type fileState struct {
	cert, key fs.FileInfo
}

func (a fileState) same(b fileState) bool {
	return sameFile(a.cert, b.cert) && sameFile(a.key, b.key)
}

func sameFile(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// newCertReloader loads the keypair once, so that a bad pair fails start-up.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	if err := r.load(st); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) stat() (fileState, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileState{}, fmt.Errorf("--tls-cert: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileState{}, fmt.Errorf("--tls-key: %w", err)
	}
	return fileState{cert: c, key: k}, nil
}

// load reads the pair; the caller holds mu or owns r exclusively.
func (r *certReloader) load(st fileState) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS keypair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.loaded, r.failed = &cert, st, fileState{}
	return nil
}

// GetCertificate is tls.Config.GetCertificate: the current keypair,
// reloaded first if its files changed.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stat()
	if err != nil {
		// Mid-rename or deleted: keep serving what we have.
		return r.cert, nil
	}
	if st.same(r.loaded) || st.same(r.failed) {
		return r.cert, nil
	}
	if err := r.load(st); err != nil {
		r.failed = st
		r.log.Warn("TLS keypair changed but does not load; still serving the previous one", "error", err)
		return r.cert, nil
	}
	if leaf := r.cert.Leaf; leaf != nil {
		r.log.Info("TLS keypair reloaded", "cert_file", r.certFile, "not_after", leaf.NotAfter)
	}
	return r.cert, nil
}

// tlsConfig is the server configuration: TLS 1.2 or later with Go's default
// cipher suites, the keypair from r.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// errPlainHTTP explains the refusal to serve plain HTTP beyond loopback.
var errPlainHTTP = errors.New("refusing plain HTTP on a non-loopback address: give --tls-cert and --tls-key, or --insecure-http when a TLS-terminating proxy is in front")

// checkPlainHTTP allows a listener without TLS only on a loopback address,
// unless the operator said --insecure-http. A host name other than
// localhost, or an empty host (every interface), is not loopback.
func checkPlainHTTP(addr string, insecure bool) error {
	if insecure || isLoopback(addr) {
		return nil
	}
	return fmt.Errorf("%s: %w", addr, errPlainHTTP)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
