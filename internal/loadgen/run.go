package loadgen

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scepca/scepca/internal/scepclient"
)

// Result is one timed phase: one target at one concurrency.
type Result struct {
	Server      string `json:"server"`
	Baseline    bool   `json:"baseline,omitempty"`
	Concurrency int    `json:"concurrency"`
	// Sent is how many requests the timed phase sent; Succeeded of them
	// came back as a verified CertRep SUCCESS with the requested
	// certificate, Failed did not.
	Sent      int `json:"sent"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Elapsed runs from the first request to the last answer.
	Elapsed time.Duration `json:"elapsedNs"`
	// Rate is Succeeded per second of Elapsed.
	Rate float64 `json:"enrollPerSec"`
	// P50 and P99 are latencies of the successful requests (nearest rank).
	P50 time.Duration `json:"p50Ns"`
	P99 time.Duration `json:"p99Ns"`
	// ServerCPU is the server process's CPU time (all cores) per
	// successful enrollment during the timed phase, when Target.CPU is set
	// and the phase used at least minCPU; ClientCPU is this process's, when
	// the server runs elsewhere.
	ServerCPU time.Duration `json:"serverCPUPerEnrollNs,omitempty"`
	ClientCPU time.Duration `json:"clientCPUPerEnrollNs,omitempty"`
	// Errors holds up to maxErrors distinct failure reasons.
	Errors []string `json:"errors,omitempty"`
}

const maxErrors = 5

// minCPU is the least server CPU time a phase must use for Result.ServerCPU
// to be reported.
const minCPU = 200 * time.Millisecond

// outcome is what the timed phase keeps of one request.
type outcome struct {
	sent    bool
	latency time.Duration
	reply   []byte
	err     error
}

// Run sends reqs to t from concurrency workers and measures throughput
// and latency. Only the HTTP exchange is timed: each reply is verified
// afterwards (signature, status SUCCESS, transactionID, recipientNonce, and
// a certificate for the request's key and subject), so that the client's
// own private-key work does not compete with the server for the cores
// while the clock runs. limit > 0 stops handing out requests once it has
// passed. A failed request is counted and described in Result.Errors; the
// error return is for a canceled ctx or bad arguments.
func Run(ctx context.Context, t Target, reqs []*Request, concurrency int, limit time.Duration) (*Result, error) {
	return run(ctx, t, reqs, concurrency, limit, func() {})
}

// run is Run calling end once the last answer is in, before verification
// (and in any case before it returns).
func run(ctx context.Context, t Target, reqs []*Request, concurrency int, limit time.Duration, end func()) (*Result, error) {
	end = sync.OnceFunc(end)
	defer end()
	if concurrency <= 0 {
		return nil, fmt.Errorf("loadgen: concurrency %d must be positive", concurrency)
	}
	if len(reqs) == 0 {
		return nil, errors.New("loadgen: no requests")
	}
	c := t.client()
	out := make([]outcome, len(reqs))
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0 := sampleCPU(t)
	start := time.Now()
	deadline := time.Time{}
	if limit > 0 {
		deadline = start.Add(limit)
	}
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) || ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
					return
				}
				t0 := time.Now()
				reply, err := c.PKIOperation(ctx, reqs[i].Body)
				out[i] = outcome{sent: true, latency: time.Since(t0), reply: reply, err: err}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := sampleCPU(t)
	end()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	verifyAll(reqs, out)

	r := &Result{Server: t.Name, Baseline: t.Baseline, Concurrency: concurrency, Elapsed: elapsed}
	var lat []time.Duration
	for i := range out {
		o := &out[i]
		if !o.sent {
			continue
		}
		r.Sent++
		if o.err != nil {
			r.Failed++
			if len(r.Errors) < maxErrors && !slices.Contains(r.Errors, o.err.Error()) {
				r.Errors = append(r.Errors, o.err.Error())
			}
			continue
		}
		r.Succeeded++
		lat = append(lat, o.latency)
	}
	if elapsed > 0 {
		r.Rate = float64(r.Succeeded) / elapsed.Seconds()
	}
	if r.Succeeded > 0 {
		// /proc counts in 10 ms ticks: below minCPU the error exceeds 5%.
		if d := cpu1.server - cpu0.server; cpu0.server >= 0 && cpu1.server >= 0 && d >= minCPU {
			r.ServerCPU = d / time.Duration(r.Succeeded)
		}
		if cpu0.client >= 0 && cpu1.client >= 0 {
			r.ClientCPU = (cpu1.client - cpu0.client) / time.Duration(r.Succeeded)
		}
	}
	r.P50 = Percentile(lat, 0.50)
	r.P99 = Percentile(lat, 0.99)
	return r, nil
}

// verifyAll checks every reply that came back, on every core, and records
// a verification failure as the request's error.
func verifyAll(reqs []*Request, out []outcome) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				if out[i].sent && out[i].err == nil {
					_, out[i].err = Verify(reqs[i], out[i].reply)
				}
				out[i].reply = nil
			}
		})
	}
	for i := range out {
		next <- i
	}
	close(next)
	wg.Wait()
}

// Verify checks that reply is a signed CertRep SUCCESS answering req
// (transactionID and recipientNonce) that carries a certificate for req's
// key and subject, and returns it parsed.
func Verify(req *Request, reply []byte) (*scepclient.Reply, error) {
	r, err := scepclient.ParseReply(reply, req.Identity.Cert, req.Identity.Key)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Status != scepclient.StatusSuccess:
		return nil, fmt.Errorf("pkiStatus %s, failInfo %q", r.Status, r.FailInfo)
	case r.TransactionID != req.TransactionID:
		return nil, errors.New("CertRep answers another transactionID")
	case !bytes.Equal(r.RecipientNonce, req.SenderNonce):
		return nil, errors.New("CertRep recipientNonce is not our senderNonce")
	}
	for _, c := range r.Certificates {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&req.Identity.Key.PublicKey) && c.Subject.CommonName == req.CommonName {
			return r, nil
		}
	}
	return nil, fmt.Errorf("CertRep SUCCESS without a certificate for %q and our key", req.CommonName)
}

// Percentile returns the nearest-rank p-quantile (0 < p <= 1) of d, or 0
// for an empty d. d is not modified.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// cpuSample holds CPU times, -1 where unknown.
type cpuSample struct{ server, client time.Duration }

func sampleCPU(t Target) cpuSample {
	s := cpuSample{server: -1, client: -1}
	if t.CPU != nil {
		if d, err := t.CPU(); err == nil {
			s.server = d
		}
	}
	if !t.InProcess {
		if d, err := SelfCPU(); err == nil {
			s.client = d
		}
	}
	return s
}
