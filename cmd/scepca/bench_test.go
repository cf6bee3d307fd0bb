package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scepca/scepca/internal/etcdtest"
	"github.com/scepca/scepca/internal/loadgen"
)

// tinyBench are flags that keep a bench run short; no test asserts on
// timing (DESIGN.md §5: performance is measured, never timed in tests).
var tinyBench = []string{"bench", "--concurrency", "1,2", "--requests", "3", "--keys", "2", "--crypto-time", "10ms", "--server-log-level", "warn"}

func benchArgs(extra ...string) []string {
	return append(append([]string{}, tinyBench...), extra...)
}

func TestBenchStartsServerProcess(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	err := run(t.Context(), benchArgs("--server-binary", buildBinary(t)), testEnv(), &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench = %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"crypto bound: RSA-2048", "per enrollment", "bound measured again", "enroll/s", "of bound"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	rows := 0
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 8 && f[0] == "scepca" {
			rows++
			if f[2] != "3" || f[3] != "0" {
				t.Errorf("row %q: want 3 sent, 0 failed", strings.TrimSpace(line))
			}
		}
	}
	if rows != 2 {
		t.Errorf("got %d scepca rows, want one per concurrency level:\n%s", rows, out)
	}
}

// decodeReport runs bench with --json and returns its report.
func decodeReport(t *testing.T, args ...string) *loadgen.Report {
	t.Helper()
	var stdout, stderr strings.Builder
	if err := run(t.Context(), benchArgs(append(args, "--json")...), testEnv(), &stdout, &stderr); err != nil {
		t.Fatalf("bench = %v\nstderr:\n%s", err, stderr.String())
	}
	var rep loadgen.Report
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatalf("bench --json output: %v\n%s", err, stdout.String())
	}
	return &rep
}

func checkResults(t *testing.T, rep *loadgen.Report) {
	t.Helper()
	if rep.Bound.Rate() <= 0 || rep.Bound.KeyBits != 2048 || rep.BoundAfter == nil {
		t.Errorf("bound = %+v, after %+v", rep.Bound, rep.BoundAfter)
	}
	var levels []int
	for _, r := range rep.Results {
		levels = append(levels, r.Concurrency)
		if r.Server != "scepca" || r.Sent != 3 || r.Succeeded != 3 || r.Failed != 0 || r.Rate <= 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("result = %+v, want 3 verified enrollments on scepca", r)
		}
	}
	if len(levels) != 2 || levels[0] != 1 || levels[1] != 2 {
		t.Errorf("levels = %v, want [1 2]", levels)
	}
}

func TestBenchInProcessJSONProfile(t *testing.T) {
	t.Parallel()
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	rep := decodeReport(t, "--in-process", "--cpuprofile", profile)
	checkResults(t, rep)
	for _, level := range []string{"c1", "c2"} {
		if fi, err := os.Stat(profile + ".scepca." + level); err != nil || fi.Size() == 0 {
			t.Errorf("CPU profile of level %s: %v, %v", level, fi, err)
		}
	}
}

func TestBenchExistingServer(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	rep := decodeReport(t, "--url", s.SCEPURL, "--challenge", s.Secret)
	checkResults(t, rep)
}

func TestBenchErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"wrong challenge", []string{"--url", s.SCEPURL, "--challenge", "wrong"}, "every warm-up request failed"},
		{"url without challenge", []string{"--url", s.SCEPURL}, "--url and --challenge go together"},
		{"bad level", []string{"--concurrency", "1,x"}, "concurrency"},
		{"zero requests", []string{"--requests", "0"}, "must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			err := run(t.Context(), benchArgs(tc.args...), testEnv(), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("bench %v = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestReadServeBanner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		in              string
		wantURL, wantSK string
		wantErr         bool
	}{
		{"dev banner", "scepca devel listening on 127.0.0.1:1 (public URL http://127.0.0.1:1)\n\nDev integration (DESKTOP, STATIC challenge):\n  SCEP URL:   http://127.0.0.1:1/scep/abc\n  Secret key: S3cret\n\nTry:\n", "http://127.0.0.1:1/scep/abc", "S3cret", false},
		{"no dev integration", "scepca devel listening on 127.0.0.1:1 (public URL http://127.0.0.1:1)\n", "", "", true},
		{"secret first", "  Secret key: S3cret\n  SCEP URL:   http://x/scep/abc\n", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, sk, err := readServeBanner(strings.NewReader(tc.in))
			if u != tc.wantURL || sk != tc.wantSK || (err != nil) != tc.wantErr {
				t.Errorf("readServeBanner() = %q, %q, %v; want %q, %q, error %v", u, sk, err, tc.wantURL, tc.wantSK, tc.wantErr)
			}
		})
	}
}

func TestServerEnviron(t *testing.T) {
	t.Parallel()
	got := serverEnviron([]string{"PATH=/bin", "SCEPCA_KEK=x", "HOME=/root", "SCEPCA_DATA=/d"})
	if strings.Join(got, " ") != "PATH=/bin HOME=/root" {
		t.Errorf("serverEnviron() = %q, want PATH and HOME only", got)
	}
}

// TestBenchEtcd: one run measures scepca on bbolt and on etcd (started by
// the bench from Debian's etcd-server), every enrollment verified.
func TestBenchEtcd(t *testing.T) {
	t.Parallel()
	etcdtest.Binary(t) // skip, or fail under SCEPCA_REQUIRE_CLIENTS=1, without etcd
	rep := decodeReport(t, "--server-binary", buildBinary(t), "--etcd")
	rows := map[string]int{}
	for _, r := range rep.Results {
		rows[r.Server]++
		if r.Sent != 3 || r.Succeeded != 3 || r.Failed != 0 || r.Rate <= 0 {
			t.Errorf("result %+v: want 3 sent and succeeded", r)
		}
	}
	if rows["scepca"] != 2 || rows["scepca-etcd"] != 2 {
		t.Errorf("rows per server = %v, want 2 for scepca and 2 for scepca-etcd", rows)
	}
	var stderr strings.Builder
	if err := run(t.Context(), benchArgs("--etcd", "--url", "http://127.0.0.1:1/scep", "--challenge", "x"), testEnv(), io.Discard, &stderr); err == nil {
		t.Error("bench --etcd --url = nil, want an error")
	}
}
