package loadgen

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of four is the second", ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(100)...), 0.99, 99 * time.Millisecond},
		{"p99 of 10 is the max", ms(seq(10)...), 0.99, 10 * time.Millisecond},
		{"p50 of 5 is the third", ms(5, 4, 3, 2, 1), 0.5, 3 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := append([]time.Duration(nil), tc.in...)
			if got := Percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
			}
			if !cmp.Equal(in, tc.in) {
				t.Errorf("Percentile modified its input")
			}
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func TestParseLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"1,4,16", []int{1, 4, 16}, false},
		{" 2 , 8", []int{2, 8}, false},
		{"3", []int{3}, false},
		{"", nil, true},
		{"1,,4", nil, true},
		{"0", nil, true},
		{"-1", nil, true},
		{"four", nil, true},
	}
	for _, tc := range tests {
		got, err := ParseLevels(tc.in)
		if !cmp.Equal(got, tc.want) || (err != nil) != tc.wantErr {
			t.Errorf("ParseLevels(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestBoundArithmetic(t *testing.T) {
	t.Parallel()
	b := Bound{KeyBits: 2048, Cores: 2, Decrypt: time.Millisecond, SignCertificate: time.Millisecond, SignCertRep: 2 * time.Millisecond}
	if got := b.PerEnrollment(); got != 4*time.Millisecond {
		t.Errorf("PerEnrollment() = %v, want 4ms", got)
	}
	if got := b.Rate(); got != 500 {
		t.Errorf("Rate() = %v, want 500 (2 cores / 4ms)", got)
	}
	if got := b.Fraction(&Result{Rate: 400}); got != 0.8 {
		t.Errorf("Fraction(400/s) = %v, want 0.8", got)
	}
	if got := (Bound{}).Fraction(&Result{Rate: 400}); got != 0 {
		t.Errorf("zero Bound: Fraction = %v, want 0", got)
	}
}

func TestMeasureBoundAndDurableWrite(t *testing.T) {
	t.Parallel()
	b, err := MeasureBound(t.Context(), 2048, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if b.Decrypt <= 0 || b.SignCertificate <= 0 || b.SignCertRep <= 0 || b.Cores <= 0 || b.Rate() <= 0 || b.AllCores <= 0 {
		t.Errorf("MeasureBound() = %+v, want every cost positive", b)
	}
	dir := t.TempDir()
	d, err := MeasureDurableWrite(t.Context(), dir, time.Millisecond)
	if err != nil || d <= 0 {
		t.Errorf("MeasureDurableWrite() = %v, %v", d, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("MeasureDurableWrite left %d files behind", len(left))
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	rep := &Report{
		Bound:           Bound{KeyBits: 2048, Cores: 2, Decrypt: time.Millisecond, SignCertificate: time.Millisecond, SignCertRep: 2 * time.Millisecond, AllCores: 450},
		BoundAfter:      &Bound{KeyBits: 2048, Cores: 2, Decrypt: 2 * time.Millisecond, SignCertificate: 2 * time.Millisecond, SignCertRep: 2 * time.Millisecond},
		DurableWrite:    500 * time.Microsecond,
		DurableWriteDir: "/tmp/x",
		Results: []*Result{
			{Server: "scepca", Concurrency: 4, Sent: 10, Succeeded: 10, Rate: 450, P50: 8 * time.Millisecond, P99: 12 * time.Millisecond},
			{Server: "scepserver", Baseline: true, Concurrency: 4, Sent: 10, Succeeded: 7, Failed: 3, Rate: 100, Errors: []string{"pkiStatus 2"}},
		},
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"bound 500.0 enroll/s on 2 cores", "0.50ms", "at most 2000 commits/s", "450.0 enroll/s (90% of the bound)", "90%", "20%", "WARNING: the bound moved", "scepserver at concurrency 4: pkiStatus 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("WriteText() lacks %q:\n%s", want, out)
		}
	}
	if err := rep.Err(); err != nil {
		t.Errorf("Err() = %v, want nil: only the baseline failed", err)
	}
	rep.Results[0].Failed = 1
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "scepca: 1 of 10") {
		t.Errorf("Err() = %v, want scepca's failure", err)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("json.Marshal(Report) = %v", err)
	}
}

// scepserverPath finds the Debian scepserver, or skips (fails under
// SCEPCA_REQUIRE_CLIENTS=1, as `make test` runs).
func scepserverPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("scepserver")
	if err != nil {
		if os.Getenv("SCEPCA_REQUIRE_CLIENTS") != "" {
			t.Fatal("scepserver not in PATH (Debian package scep)")
		}
		t.Skip("scepserver not in PATH (Debian package scep)")
	}
	return p
}

// TestAgainstSCEPServer drives the real micromdm scepserver through
// Prepare, Run and Verify, with tiny numbers.
func TestAgainstSCEPServer(t *testing.T) {
	t.Parallel()
	bin := scepserverPath(t)
	var log bytes.Buffer
	s, err := StartSCEPServer(t.Context(), bin, t.TempDir(), 2048, "test-challenge", &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("scepserver output:\n%s", log.String())
		}
	})
	ids, err := NewIdentities(t.Context(), 2, 2048)
	if err != nil {
		t.Fatal(err)
	}
	target := Target{Name: "scepserver", URL: s.URL, Challenge: s.Challenge, Baseline: true}
	reqs, err := Prepare(t.Context(), target, ids, 4, "test-"+RunID())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		if seen[r.TransactionID] || seen[r.CommonName] {
			t.Errorf("request %q/%q repeats a transactionID or subject", r.TransactionID, r.CommonName)
		}
		seen[r.TransactionID], seen[r.CommonName] = true, true
	}
	res, err := Run(t.Context(), target, reqs[:3], 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 3 || res.Succeeded != 3 || res.Failed != 0 || !res.Baseline || res.P99 < res.P50 {
		t.Errorf("Run() = %+v, want 3 verified enrollments", res)
	}

	// Verify refuses a reply that answers another request.
	c := target.client()
	reply, err := c.PKIOperation(t.Context(), reqs[3].Body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(reqs[3], reply); err != nil {
		t.Errorf("Verify(own reply) = %v", err)
	}
	if _, err := Verify(reqs[1], reply); err == nil {
		t.Error("Verify(reply to another request) = nil, want an error")
	}

	// A wrong challenge: every request fails, and Run says why.
	bad := target
	bad.Challenge = "wrong"
	reqs, err = Prepare(t.Context(), bad, ids, 2, "bad-"+RunID())
	if err != nil {
		t.Fatal(err)
	}
	res, err = Run(t.Context(), bad, reqs, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 2 || res.Succeeded != 0 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "pkiStatus 2") {
		t.Errorf("Run(wrong challenge) = %+v, want 2 FAILUREs", res)
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "123 (scepca) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100", 3 * time.Second, false},
		{"name with spaces and parens", "7 (a b) (c)) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0", 30 * time.Millisecond, false},
		{"short", "7 (x) R 1 2", 0, true},
		{"no name", "7 x R", 0, true},
		{"not a number", "7 (x) R 1 2 3 4 5 6 7 8 9 10 a 2", 0, true},
	}
	for _, tc := range tests {
		got, err := parseStatCPU(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: parseStatCPU(%q) = %v, %v; want %v, error %v", tc.name, tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestProcessCPUSelf(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := ProcessCPU(os.Getpid())(); err != nil {
		t.Errorf("ProcessCPU(self) = %v", err)
	}
	if _, err := SelfCPU(); err != nil {
		t.Errorf("SelfCPU() = %v", err)
	}
}
