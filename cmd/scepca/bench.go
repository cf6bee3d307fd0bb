package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/scepca/scepca/internal/loadgen"
)

type benchOptions struct {
	concurrency   string
	requests      int
	duration      time.Duration
	keySize       int
	keys          int
	url           string
	challenge     string
	compare       bool
	scepserver    string
	serverBinary  string
	inProcess     bool
	serverLog     string
	cryptoTime    time.Duration
	jsonOut       bool
	cpuProfile    string
	keepWorkFiles bool
	// etcd measures scepca on etcd too (a second scepca target).
	etcd          bool
	etcdEndpoints string
	etcdBinary    string
}

func runBench(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchOptions
	fs.StringVar(&o.concurrency, "concurrency", "1,4,16", "concurrency levels, comma-separated")
	fs.IntVar(&o.requests, "requests", 400, "timed enrollments per server and level (prepared before the clock starts)")
	fs.DurationVar(&o.duration, "duration", 0, "end each timed phase after this long, even before --requests (0: no limit)")
	fs.IntVar(&o.keySize, "key-size", 2048, "RSA key size of the client keys, of scepserver's CA and of the crypto bound (scepca's own CA is RSA-2048)")
	fs.IntVar(&o.keys, "keys", 64, "client keys to generate and reuse (each request is still its own transaction and subject)")
	fs.StringVar(&o.url, "url", "", "SCEP URL of a running scepca integration to measure (default: start one)")
	fs.StringVar(&o.challenge, "challenge", "", "challenge password for --url")
	fs.BoolVar(&o.compare, "compare-scepserver", false, "also measure micromdm's scepserver (Debian package scep) in the same run")
	fs.StringVar(&o.scepserver, "scepserver", "scepserver", "scepserver executable for --compare-scepserver")
	fs.StringVar(&o.serverBinary, "server-binary", "", "scepca binary started as `serve --dev` (default: this executable)")
	fs.BoolVar(&o.inProcess, "in-process", false, "run the scepca server inside this process (with --cpuprofile, the profile covers it)")
	fs.StringVar(&o.serverLog, "server-log-level", "info", "--log-level of the started scepca server")
	fs.DurationVar(&o.cryptoTime, "crypto-time", time.Second, "how long to time each private-key operation for the bound")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of each timed phase to `FILE`.<server>.c<level> (with --in-process it covers the server)")
	fs.BoolVar(&o.keepWorkFiles, "keep", false, "keep the temporary data directories and server logs")
	fs.BoolVar(&o.etcd, "etcd", false, "also measure scepca on etcd (--store etcd) in the same run, on an etcd started here from --etcd-binary unless --etcd-endpoints is given")
	fs.StringVar(&o.etcdEndpoints, "etcd-endpoints", "", "with --etcd: use this etcd (client URLs, comma-separated) instead of starting one; the run writes under a fresh prefix")
	fs.StringVar(&o.etcdBinary, "etcd-binary", "etcd", "etcd executable for --etcd (Debian package etcd-server)")
	if err := parseFlags(fs, args, env); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	levels, err := loadgen.ParseLevels(o.concurrency)
	if err != nil {
		return err
	}
	if (o.url == "") != (o.challenge == "") {
		return errors.New("bench: --url and --challenge go together")
	}
	if o.etcdEndpoints != "" {
		o.etcd = true
	}
	if o.etcd && o.url != "" {
		return errors.New("bench: --etcd starts its own scepca servers; it does not go with --url")
	}
	if o.requests <= 0 || o.keys <= 0 {
		return errors.New("bench: --requests and --keys must be positive")
	}

	work, err := os.MkdirTemp("", "scepca-bench-")
	if err != nil {
		return err
	}
	if o.keepWorkFiles {
		fmt.Fprintf(stderr, "bench: work files in %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}

	// The bound first, while nothing else runs.
	fmt.Fprintf(stderr, "bench: timing RSA-%d private-key operations (%v each)\n", o.keySize, o.cryptoTime)
	rep := &loadgen.Report{GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), DurableWriteDir: work}
	if rep.Bound, err = loadgen.MeasureBound(ctx, o.keySize, o.cryptoTime); err != nil {
		return fmt.Errorf("bench: bound: %w", err)
	}
	if rep.DurableWrite, err = loadgen.MeasureDurableWrite(ctx, work, o.cryptoTime); err != nil {
		return fmt.Errorf("bench: %w", err)
	}

	targets, stop, err := o.targets(ctx, work, slices.Max(levels), stderr)
	if err != nil {
		return err
	}
	defer stop()

	need := 0
	for _, l := range levels {
		need = max(need, l+o.requests)
	}
	fmt.Fprintf(stderr, "bench: generating %d RSA-%d client keys\n", min(o.keys, need), o.keySize)
	ids, err := loadgen.NewIdentities(ctx, min(o.keys, need), o.keySize)
	if err != nil {
		return err
	}

	plan := loadgen.Plan{Levels: levels, Requests: o.requests, Duration: o.duration}
	var profErr error
	if o.cpuProfile != "" {
		plan.Timed = func(server string, level int) func() {
			return profilePhase(fmt.Sprintf("%s.%s.c%d", o.cpuProfile, server, level), &profErr)
		}
	}
	rep.Results, err = loadgen.Bench(ctx, targets, ids, plan, stderr)
	if err == nil {
		err = profErr
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	after, err := loadgen.MeasureBound(ctx, o.keySize, o.cryptoTime)
	if err != nil {
		return fmt.Errorf("bench: bound: %w", err)
	}
	rep.BoundAfter = &after
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if err := rep.Err(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// targets returns the servers to measure: scepca at --url or started in
// work, and scepserver with --compare-scepserver. stop ends what it started.
func (o *benchOptions) targets(ctx context.Context, work string, conns int, stderr io.Writer) (_ []loadgen.Target, stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, f := range slices.Backward(stops) {
			f()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	var targets []loadgen.Target
	if o.url != "" {
		targets = append(targets, loadgen.Target{Name: "scepca", URL: o.url, Challenge: o.challenge, HTTP: loadgen.NewHTTPClient(conns)})
	} else {
		srv, err := o.startSCEPCA(ctx, filepath.Join(work, "scepca"), stderr)
		if err != nil {
			return nil, nil, err
		}
		stops = append(stops, srv.stop)
		targets = append(targets, loadgen.Target{Name: "scepca", URL: srv.scepURL, Challenge: srv.secret, HTTP: loadgen.NewHTTPClient(conns), CPU: srv.cpu, InProcess: o.inProcess})
	}
	if o.etcd {
		t, stopEtcd, err := o.etcdTarget(ctx, work, conns, stderr)
		if err != nil {
			return nil, nil, err
		}
		stops = append(stops, stopEtcd)
		targets = append(targets, t)
	}
	if o.compare {
		dir := filepath.Join(work, "scepserver")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, nil, err
		}
		logf, err := os.Create(filepath.Join(dir, "scepserver.log"))
		if err != nil {
			return nil, nil, err
		}
		stops = append(stops, func() { logf.Close() })
		fmt.Fprintf(stderr, "bench: starting %s with an RSA-%d CA\n", o.scepserver, o.keySize)
		ss, err := loadgen.StartSCEPServer(ctx, o.scepserver, dir, o.keySize, "bench-"+loadgen.RunID(), logf)
		if err != nil {
			return nil, nil, fmt.Errorf("bench: %w", err)
		}
		stops = append(stops, func() { _ = ss.Stop() })
		targets = append(targets, loadgen.Target{Name: "scepserver", URL: ss.URL, Challenge: ss.Challenge, HTTP: loadgen.NewHTTPClient(conns), CPU: ss.CPU(), Baseline: true})
	}
	return targets, stop, nil
}

// etcdTarget starts etcd (unless --etcd-endpoints names one) and a scepca
// server on it, under a prefix of this run. Its CPU figure adds etcd's to
// the server's: both are the cost of an enrollment on this backend.
func (o *benchOptions) etcdTarget(ctx context.Context, work string, conns int, stderr io.Writer) (_ loadgen.Target, stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, f := range slices.Backward(stops) {
			f()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	endpoints := o.etcdEndpoints
	var etcdCPU loadgen.CPUFunc
	if endpoints == "" {
		dir := filepath.Join(work, "etcd")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return loadgen.Target{}, nil, err
		}
		logf, err := os.Create(filepath.Join(dir, "etcd.log"))
		if err != nil {
			return loadgen.Target{}, nil, err
		}
		stops = append(stops, func() { logf.Close() })
		fmt.Fprintf(stderr, "bench: starting %s\n", o.etcdBinary)
		e, err := loadgen.StartEtcd(ctx, o.etcdBinary, dir, logf)
		if err != nil {
			return loadgen.Target{}, nil, fmt.Errorf("bench: %w", err)
		}
		stops = append(stops, func() { _ = e.Stop() })
		endpoints, etcdCPU = e.Endpoint, e.CPU()
	}
	srv, err := o.startSCEPCA(ctx, filepath.Join(work, "scepca-etcd"), stderr,
		"--store", "etcd", "--etcd-endpoints", endpoints, "--etcd-prefix", "/scepca-bench-"+loadgen.RunID()+"/")
	if err != nil {
		return loadgen.Target{}, nil, err
	}
	stops = append(stops, srv.stop)
	cpu := srv.cpu
	if etcdCPU != nil {
		cpu = loadgen.SumCPU(srv.cpu, etcdCPU)
	}
	return loadgen.Target{Name: "scepca-etcd", URL: srv.scepURL, Challenge: srv.secret, HTTP: loadgen.NewHTTPClient(conns), CPU: cpu, InProcess: o.inProcess}, stop, nil
}

// benchServer is the scepca server a bench run started.
type benchServer struct {
	scepURL, secret string
	cpu             loadgen.CPUFunc
	stop            func()
}

// startSCEPCA starts `scepca serve --dev` (with extra flags) on a fresh
// data directory and a free loopback port, as a separate process (default) or inside this one,
// and reads the SCEP URL and secret from its banner. The server logs to
// <data>/server.log.
func (o *benchOptions) startSCEPCA(ctx context.Context, data string, stderr io.Writer, extra ...string) (*benchServer, error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(data, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--dev", "--data", data, "--listen", "127.0.0.1:0", "--log-level", o.serverLog}, extra...)
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var cpu loadgen.CPUFunc
	if o.inProcess {
		cpu = loadgen.SelfCPU
		fmt.Fprintln(stderr, "bench: starting scepca serve in this process")
		noEnv := func(string) string { return "" }
		go func() {
			err := run(ctx, args, noEnv, pw, logf)
			pw.CloseWithError(fmt.Errorf("server exited: %v", err))
			done <- err
		}()
	} else {
		bin := o.serverBinary
		if bin == "" {
			if bin, err = os.Executable(); err != nil {
				cancel()
				logf.Close()
				return nil, err
			}
		}
		fmt.Fprintf(stderr, "bench: starting %s serve\n", bin)
		cmd := exec.CommandContext(ctx, bin, args...) //nolint:gosec // G204: the scepca binary the operator named (default: this one), with fixed arguments
		cmd.Env = serverEnviron(os.Environ())
		cmd.Stdout, cmd.Stderr = pw, logf
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 20 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			logf.Close()
			return nil, err
		}
		cpu = loadgen.ProcessCPU(cmd.Process.Pid)
		go func() {
			err := cmd.Wait()
			pw.CloseWithError(fmt.Errorf("server exited: %v", err))
			done <- err
		}()
	}
	stop := func() {
		cancel()
		// exec reports the cancellation itself as context.Canceled.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "bench: scepca server stopped with %v (log: %s)\n", err, logPath)
		}
		logf.Close()
	}
	scepURL, secret, err := readServeBanner(pr)
	if err != nil {
		stop()
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("bench: scepca did not start: %w\n%s", err, b)
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck // drain the rest of stdout
	return &benchServer{scepURL: scepURL, secret: secret, cpu: cpu, stop: stop}, nil
}

// serverEnviron is env without SCEPCA_* variables, so that the started
// server is configured by its flags alone.
func serverEnviron(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SCEPCA_") {
			out = append(out, kv)
		}
	}
	return out
}

// readServeBanner reads what `serve --dev` prints at start-up until the dev
// integration's SCEP URL and secret.
func readServeBanner(r io.Reader) (scepURL, secret string, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "SCEP URL:"):
			scepURL = strings.TrimSpace(strings.TrimPrefix(line, "SCEP URL:"))
		case strings.HasPrefix(line, "Secret key:"):
			secret = strings.TrimSpace(strings.TrimPrefix(line, "Secret key:"))
			if scepURL == "" {
				return "", "", errors.New("secret printed before the SCEP URL")
			}
			return scepURL, secret, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	return "", "", errors.New("no SCEP URL and secret in the output")
}

// profilePhase writes a CPU profile of one timed phase to path; the
// returned function ends it. The first error is kept in *errp.
func profilePhase(path string, errp *error) func() {
	fail := func(err error) func() {
		if *errp == nil {
			*errp = fmt.Errorf("cpu profile: %w", err)
		}
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return fail(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fail(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fail(err)
		}
	}
}
