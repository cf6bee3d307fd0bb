package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/scepca/scepca/internal/scepclient"
)

// SCEPServer is a running micromdm scepserver (Debian package scep), the
// baseline of DESIGN.md §5. Its CertRep is always DES-CBC and it refuses a
// second certificate for a known DN (PROTOCOLS.md §1.12).
type SCEPServer struct {
	URL       string
	Challenge string
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the process has exited
	waitErr   error         // set before exited is closed
}

// StartSCEPServer creates an RSA CA of bits in dir/depot (`scepserver ca
// -init -keySize bits`), starts `scepserver -depot dir/depot -port P
// -challenge challenge` on a free port and returns once GetCACaps answers
// (at most startTimeout). bin is the scepserver executable ("scepserver"
// looks it up in PATH); its output goes to log. Stop ends it.
func StartSCEPServer(ctx context.Context, bin, dir string, bits int, challenge string, log io.Writer) (*SCEPServer, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("loadgen: scepserver: %w", err)
	}
	depot := filepath.Join(dir, "depot")
	init := exec.CommandContext(ctx, path, "ca", "-init", "-depot", depot, "-keySize", strconv.Itoa(bits)) //nolint:gosec // G204: the scepserver the caller named, no shell
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("loadgen: scepserver ca -init: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "-depot", depot, "-port", strconv.Itoa(port), "-challenge", challenge) //nolint:gosec // G204: as above
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: start scepserver: %w", err)
	}
	s := &SCEPServer{
		URL:       fmt.Sprintf("http://127.0.0.1:%d/scep", port),
		Challenge: challenge,
		cmd:       cmd,
		exited:    make(chan struct{}),
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

const startTimeout = 15 * time.Second

// waitReady polls GetCACaps until it answers, the process exits, or
// startTimeout passes.
func (s *SCEPServer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	c := &scepclient.Client{URL: s.URL, HTTP: NewHTTPClient(1)}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := c.GetCACaps(ctx); err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("loadgen: scepserver exited before answering: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("loadgen: scepserver did not answer at %s: %w", s.URL, ctx.Err())
		case <-tick.C:
		}
	}
}

// CPU reads the server process's CPU time.
func (s *SCEPServer) CPU() CPUFunc { return ProcessCPU(s.cmd.Process.Pid) }

// Stop kills the server and waits for it to exit. It may be called more
// than once.
func (s *SCEPServer) Stop() error {
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("loadgen: stop scepserver: %w", err)
	}
	<-s.exited
	return nil
}

// freePort asks the kernel for a free loopback TCP port. scepserver takes
// only a port, so there is a short window in which another process could
// take it; the start then fails visibly.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
