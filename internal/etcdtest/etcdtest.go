// Package etcdtest starts a real etcd for tests: Debian's etcd-server
// binary (`etcd`, 3.4 in bookworm) on 127.0.0.1 with its data in a test's
// temporary directory, killed when the test ends. SCEPCA_TEST_ETCD_ENDPOINTS
// points tests at an external cluster instead. Without an etcd binary the
// test is skipped, or fails when SCEPCA_REQUIRE_CLIENTS=1 (make test sets
// it), as the real-client tests do.
//
// It imports none of scepca's packages.
package etcdtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EnvEndpoints names an external etcd (comma-separated client URLs) that
// tests use instead of starting one.
const EnvEndpoints = "SCEPCA_TEST_ETCD_ENDPOINTS"

// TLSFiles makes the server serve TLS with these PEM files and require
// client certificates issued by CA.
type TLSFiles struct {
	CA, Cert, Key string
}

// Server is a running etcd.
type Server struct {
	// Endpoints are the client URLs, e.g. http://127.0.0.1:41234.
	Endpoints []string
	// External is true when the endpoints came from EnvEndpoints.
	External bool

	cmd  *exec.Cmd
	out  *buffer
	done chan error
}

// Binary returns the path of the etcd binary, or skips or fails t.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("etcd")
	if err != nil {
		if q, e := exec.LookPath("/usr/bin/etcd"); e == nil {
			return q
		}
		missing(t, fmt.Sprintf("etcd not found (Debian package etcd-server; make deps installs it): %v", err))
	}
	return p
}

// Start returns the external etcd of EnvEndpoints, or starts one that is
// killed when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if v := os.Getenv(EnvEndpoints); v != "" {
		return &Server{Endpoints: strings.Split(v, ","), External: true}
	}
	return StartLocal(t, nil)
}

// StartLocal starts an etcd process (never an external one), with TLS and
// client-certificate authentication when tlsFiles is set.
func StartLocal(t testing.TB, tlsFiles *TLSFiles) *Server {
	t.Helper()
	bin := Binary(t)
	return startRetrying(t, bin, tlsFiles, nil)
}

// startRetrying starts etcd, with new ports when the first ones were
// taken; prepare, when set, fills the data directory first.
func startRetrying(t testing.TB, bin string, tlsFiles *TLSFiles, prepare func(dataDir, name, peerURL string) error) *Server {
	t.Helper()
	var lastErr error
	for range 5 { // a port picked free may be taken before etcd binds it
		s, err := start(t, bin, tlsFiles, prepare)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("etcd did not start: %v", lastErr)
	return nil
}

// Snapshot saves a snapshot of s to path with etcdctl (Debian package
// etcd-client), as an operator backs etcd up.
func (s *Server) Snapshot(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command(Etcdctl(t), "--endpoints", strings.Join(s.Endpoints, ","), "snapshot", "save", path).CombinedOutput() //nolint:gosec // G204: etcdctl from PATH, arguments built here
	if err != nil {
		t.Fatalf("etcdctl snapshot save: %v\n%s", err, out)
	}
}

// Restore starts a new etcd from a snapshot, restored with `etcdctl
// snapshot restore` as an operator restores a member; killed when t ends.
func Restore(t testing.TB, snapshot string) *Server {
	t.Helper()
	bin, ctl := Binary(t), Etcdctl(t)
	return startRetrying(t, bin, nil, func(dataDir, name, peerURL string) error {
		out, err := exec.Command(ctl, "snapshot", "restore", snapshot, //nolint:gosec // G204: as above
			"--data-dir", dataDir, "--name", name,
			"--initial-cluster", name+"="+peerURL, "--initial-advertise-peer-urls", peerURL).CombinedOutput()
		if err != nil {
			return fmt.Errorf("etcdctl snapshot restore: %v\n%s", err, out)
		}
		return nil
	})
}

// Etcdctl returns the path of etcdctl, or skips or fails t like Binary.
func Etcdctl(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("etcdctl")
	if err != nil {
		missing(t, fmt.Sprintf("etcdctl not found (Debian package etcd-client; make deps installs it): %v", err))
	}
	return p
}

func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("SCEPCA_REQUIRE_CLIENTS") == "1" {
		t.Fatalf("%s (SCEPCA_REQUIRE_CLIENTS=1)", msg)
	}
	t.Skip(msg)
}

func start(t testing.TB, bin string, tlsFiles *TLSFiles, prepare func(dataDir, name, peerURL string) error) (*Server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if tlsFiles != nil {
		scheme = "https"
	}
	client := fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, err
	}
	const name = "scepca-test"
	dataDir := filepath.Join(dir, "data")
	if prepare != nil {
		if err := prepare(dataDir, name, peer); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	args := []string{
		"--name", name,
		"--data-dir", dataDir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", name + "=" + peer,
		"--initial-cluster-state", "new",
		"--logger", "zap", "--log-level", "warn",
	}
	if tlsFiles != nil {
		args = append(args, "--cert-file", tlsFiles.Cert, "--key-file", tlsFiles.Key,
			"--trusted-ca-file", tlsFiles.CA, "--client-cert-auth")
	}
	cmd := exec.Command(bin, args...) //nolint:gosec // G204: the etcd binary found on PATH, with arguments built here
	out := &buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Endpoints: []string{client}, cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-s.done //nolint:errcheck // killed on purpose: Wait can only report the signal
		_ = os.RemoveAll(dir)
	}
	if err := s.wait(tlsFiles); err != nil {
		stop()
		return nil, fmt.Errorf("%w\netcd output:\n%s", err, out.String())
	}
	t.Cleanup(stop)
	return s, nil
}

// wait polls the server until it answers a read, it exits, or 30 s pass
// (a watchdog: etcd is ready in about a second).
func (s *Server) wait(tlsFiles *TLSFiles) error {
	cfg := clientv3.Config{Endpoints: s.Endpoints, DialTimeout: time.Second, Logger: zap.NewNop()}
	if tlsFiles != nil {
		tc, err := ClientTLS(tlsFiles.CA, tlsFiles.Cert, tlsFiles.Key)
		if err != nil {
			return err
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := cli.Get(ctx, "etcdtest-probe")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-s.done:
			s.done <- werr
			return fmt.Errorf("etcd exited: %v", werr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd not ready: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL); a no-op for an external one.
func (s *Server) Kill() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
	}
}

// Output is what the server logged.
func (s *Server) Output() string {
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// ClientTLS builds a client TLS configuration from PEM files: the CA that
// issued the server certificate, and the client certificate and key.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		tcp, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			return nil, errors.New("not a TCP address")
		}
		ports = append(ports, tcp.Port)
	}
	return ports, nil
}

// buffer collects the process's output for failure messages.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func loadPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return pool, nil
}
