package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/syncbuf"
)

// testServer is a running `scepca serve --dev` with what it printed.
type testServer struct {
	Data       string // data directory
	URL        string // base URL, e.g. http://127.0.0.1:41234
	SCEPURL    string // the dev integration's SCEP URL
	Secret     string // the dev integration's static secret
	Token      string // admin token
	Stdout     *syncBuffer
	Stderr     *syncBuffer
	stop       func() error
	stopOnce   sync.Once
	stopResult error
}

// Stop shuts the server down gracefully and returns run's error.
func (s *testServer) Stop() error {
	s.stopOnce.Do(func() { s.stopResult = s.stop() })
	return s.stopResult
}

// syncBuffer collects output written by concurrent goroutines.
type syncBuffer = syncbuf.Buffer

// testEnv is the environment a test server sees: nothing from the real one.
func testEnv(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// startServer runs `scepca serve --dev` in-process on 127.0.0.1:0 with a
// fresh data directory (or data, when given via --data in args) and waits
// until it prints its dev integration.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	data := t.TempDir()
	full := append([]string{"serve", "--dev", "--data", data, "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--data" {
			data = args[i+1]
		}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	pr, pw := io.Pipe()
	s := &testServer{Data: data, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, full, testEnv(), io.MultiWriter(pw, s.Stdout), s.Stderr)
		pw.CloseWithError(fmt.Errorf("server exited: %v", err))
		done <- err
	}()
	s.stop = func() error {
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("serve returned %v\nstderr:\n%s", err, s.Stderr.String())
		}
	})
	if err := s.readBanner(pr); err != nil {
		t.Fatalf("server did not start: %v\nstdout:\n%s\nstderr:\n%s", err, s.Stdout.String(), s.Stderr.String())
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck // drain the rest of stdout
	return s
}

// readBanner parses the start-up lines until the dev integration's secret.
func (s *testServer) readBanner(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.Contains(line, " listening on "):
			i := strings.Index(line, "public URL ")
			s.URL = strings.TrimSuffix(line[i+len("public URL "):], ")")
		case strings.HasPrefix(line, "SCEP URL:"):
			s.SCEPURL = strings.TrimSpace(strings.TrimPrefix(line, "SCEP URL:"))
		case strings.HasPrefix(line, "Secret key:"):
			s.Secret = strings.TrimSpace(strings.TrimPrefix(line, "Secret key:"))
			tok, err := os.ReadFile(filepath.Join(s.Data, "admin-token"))
			if err != nil {
				return err
			}
			s.Token = strings.TrimSpace(string(tok))
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("no banner")
}

// API performs an authenticated admin API request.
func (s *testServer) API(t *testing.T, method, path string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// buildBinary builds the scepca binary once per test run, for tests that
// need a separate process (kill -9).
func buildBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scepca-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "scepca")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// startProcess runs the built binary as `serve --dev` on data (reused across
// restarts) and waits for its banner. The process is killed at cleanup.
func startProcess(t *testing.T, data string, args ...string) (*testServer, *exec.Cmd) {
	t.Helper()
	bin := buildBinary(t)
	full := append([]string{"serve", "--dev", "--data", data, "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + data}
	s := &testServer{Data: data, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}}
	cmd.Stderr = s.Stderr
	pr, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, _ = io.Copy(io.Discard, io.TeeReader(pr, s.Stdout)) // keep stdout flowing after the banner
		waited <- cmd.Wait()
	}()
	s.stop = func() error {
		_ = cmd.Process.Kill()
		select {
		case <-waited: //nolint:errcheck // killed on purpose, so Wait can only report the signal
		case <-time.After(30 * time.Second):
			return errors.New("process did not exit")
		}
		return nil
	}
	t.Cleanup(func() { _ = s.Stop() })
	// Parse the banner from the copy of stdout as it arrives.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := s.readBanner(strings.NewReader(s.Stdout.String())); err == nil {
			return s, cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("process did not start\nstdout:\n%s\nstderr:\n%s", s.Stdout.String(), s.Stderr.String())
		}
		select {
		case err := <-waited:
			t.Fatalf("process exited: %v\nstderr:\n%s", err, s.Stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
