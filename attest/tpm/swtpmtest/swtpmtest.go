// Package swtpmtest starts a Debian swtpm per test (STYLE.md §7): a fresh
// TPM 2.0 on a Unix socket in t.TempDir(), killed in t.Cleanup.
package swtpmtest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Start starts swtpm and returns the path of its server socket, for
// tpm.Open. Without swtpm the test is skipped, or fails under
// SCEPCA_REQUIRE_CLIENTS=1.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		if os.Getenv("SCEPCA_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("swtpm not found: %v (SCEPCA_REQUIRE_CLIENTS=1; apt-get install swtpm swtpm-tools)", err)
		}
		t.Skipf("swtpm not found: %v", err)
	}
	// Unix socket paths are limited to 108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "swtpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	sock, ctrl := filepath.Join(dir, "tpm.sock"), filepath.Join(dir, "ctrl.sock")
	cmd := exec.Command(bin, "socket", "--tpm2", //nolint:gosec // G204: swtpm from PATH, arguments are our temporary paths
		"--server", "type=unixio,path="+sock,
		"--ctrl", "type=unixio,path="+ctrl,
		"--flags", "not-need-init,startup-clear",
		"--tpmstate", "dir="+state)
	out, err := os.Create(filepath.Join(dir, "swtpm.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = out.Close()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		// The socket file appears at bind, before swtpm listens: only a
		// connection that is accepted says it is ready (a bare existence
		// check was refused under load).
		if c, err := net.Dial("unix", sock); err == nil {
			_ = c.Close()
			return sock
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "swtpm.log"))
			t.Fatalf("swtpm exited: %s", log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("swtpm did not accept on its socket within 10s")
		}
	}
}
