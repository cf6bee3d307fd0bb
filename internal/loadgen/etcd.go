package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Etcd is a single-member etcd started for a bench run, so that scepca's
// etcd backend is measured beside bbolt in the same run.
type Etcd struct {
	// Endpoint is the client URL, http://127.0.0.1:<port>.
	Endpoint string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
}

// StartEtcd starts bin (Debian's etcd-server installs `etcd`) with its
// data in dir/etcd, listening on free loopback ports, and returns once
// its /health answers (at most startTimeout). Its output goes to log.
// etcd fsyncs every commit, as a production member does.
func StartEtcd(ctx context.Context, bin, dir string, log io.Writer) (*Etcd, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("loadgen: etcd: %w", err)
	}
	client, err := freePort()
	if err != nil {
		return nil, err
	}
	peer, err := freePort()
	if err != nil {
		return nil, err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	cmd := exec.Command(path, //nolint:gosec // G204: the etcd the caller named, no shell
		"--name", "bench", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "bench="+peerURL, "--logger", "zap", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: start etcd: %w", err)
	}
	e := &Etcd{Endpoint: clientURL, cmd: cmd, exited: make(chan struct{})}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.exited)
	}()
	if err := e.waitReady(ctx); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

// waitReady polls /health until it reports healthy, the process exits, or
// startTimeout passes.
func (e *Etcd) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	hc := NewHTTPClient(1)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.Endpoint+"/health", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"true"`) {
				return nil
			}
		}
		select {
		case <-e.exited:
			return fmt.Errorf("loadgen: etcd exited before answering: %v", e.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("loadgen: etcd not healthy: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// CPU reads the etcd process's CPU time.
func (e *Etcd) CPU() CPUFunc { return ProcessCPU(e.cmd.Process.Pid) }

// Stop kills etcd and waits for it to exit. It may be called more than once.
func (e *Etcd) Stop() error {
	if err := e.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("loadgen: stop etcd: %w", err)
	}
	<-e.exited
	return nil
}

// SumCPU adds CPU readers: a server and the database process it writes to.
func SumCPU(fs ...CPUFunc) CPUFunc {
	return func() (time.Duration, error) {
		var total time.Duration
		for _, f := range fs {
			d, err := f()
			if err != nil {
				return 0, err
			}
			total += d
		}
		return total, nil
	}
}
