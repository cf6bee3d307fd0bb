package loadgen

import (
	"errors"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// Report is one bench run: the bound, the cost of a durable write, and the
// results of every timed phase.
type Report struct {
	GoVersion string `json:"goVersion"`
	NumCPU    int    `json:"numCPU"`
	Bound     Bound  `json:"bound"`
	// BoundAfter is the bound measured again after the timed phases; when
	// it differs much from Bound, something else used the machine.
	BoundAfter *Bound `json:"boundAfter,omitempty"`
	// DurableWrite is the time of one bbolt commit in DurableWriteDir
	// (MeasureDurableWrite; zero when not measured).
	DurableWrite    time.Duration `json:"durableWriteNs,omitempty"`
	DurableWriteDir string        `json:"durableWriteDir,omitempty"`
	Results         []*Result     `json:"results"`
}

// Err reports the failed enrollments of every result that is not a
// baseline's: a server under test must not fail a single one.
func (rep *Report) Err() error {
	var errs []error
	for _, r := range rep.Results {
		if r.Failed > 0 && !r.Baseline {
			errs = append(errs, fmt.Errorf("%s: %d of %d enrollments failed at concurrency %d", r.Server, r.Failed, r.Sent, r.Concurrency))
		}
	}
	return errors.Join(errs...)
}

// Fraction is r's throughput as a fraction of b (0 when b is unknown).
func (b Bound) Fraction(r *Result) float64 {
	if b.Rate() <= 0 {
		return 0
	}
	return r.Rate / b.Rate()
}

// WriteText prints the bound and a table with one row per result.
func (rep *Report) WriteText(w io.Writer) error {
	b := rep.Bound
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "crypto bound: RSA-%d private-key operations, single core, GOMAXPROCS=%d\n", b.KeyBits, b.Cores)
	fmt.Fprintf(tw, "  decrypt envelope key (PKCS #1 v1.5)\t%s\n", ms(b.Decrypt))
	fmt.Fprintf(tw, "  sign certificate (SHA-256)\t%s\n", ms(b.SignCertificate))
	fmt.Fprintf(tw, "  sign CertRep (SHA-256)\t%s\n", ms(b.SignCertRep))
	fmt.Fprintf(tw, "  per enrollment\t%s\t=> bound %.1f enroll/s on %d cores\n", ms(b.PerEnrollment()), b.Rate(), b.Cores)
	if b.AllCores > 0 {
		fmt.Fprintf(tw, "  the three on all %d cores at once\t\t=> %.1f enroll/s (%.0f%% of the bound)\n", b.Cores, b.AllCores, 100*b.AllCores/b.Rate())
	}
	if rep.DurableWrite > 0 {
		fmt.Fprintf(tw, "durable write (bbolt commit in %s)\t%s\t=> at most %.0f commits/s, serialized\n", rep.DurableWriteDir, ms(rep.DurableWrite), 1/rep.DurableWrite.Seconds())
	}
	if a := rep.BoundAfter; a != nil {
		fmt.Fprintf(tw, "bound measured again after the run\t%s\t=> %.1f enroll/s (%+.0f%%)\n", ms(a.PerEnrollment()), a.Rate(), 100*(a.Rate()/b.Rate()-1))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if a := rep.BoundAfter; a != nil && math.Abs(a.Rate()/b.Rate()-1) > 0.10 {
		fmt.Fprintln(w, "WARNING: the bound moved by more than 10% during the run: another process was using the cores; repeat on an idle machine.")
	}
	fmt.Fprintln(w, "note: the load generator runs on the same cores as the server; the bound is not reduced for it.")
	fmt.Fprintln(w, "CPU efficiency = per-enrollment private-key time / server CPU per enrollment: the fraction of the bound the server would reach with the cores to itself.")
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tconcurrency\tsent\tfailed\tenroll/s\tp50\tp99\tof bound\tserver CPU/enroll\tclient CPU/enroll\tCPU efficiency\t")
	opt := func(d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return ms(d)
	}
	for _, r := range rep.Results {
		eff := "-"
		if r.ServerCPU > 0 {
			eff = fmt.Sprintf("%.0f%%", 100*b.PerEnrollment().Seconds()/r.ServerCPU.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%.0f%%\t%s\t%s\t%s\t\n", r.Server, r.Concurrency, r.Sent, r.Failed, r.Rate, ms(r.P50), ms(r.P99), 100*b.Fraction(r), opt(r.ServerCPU), opt(r.ClientCPU), eff)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Results {
		for _, e := range r.Errors {
			fmt.Fprintf(w, "%s at concurrency %d: %s\n", r.Server, r.Concurrency, e)
		}
	}
	return nil
}
