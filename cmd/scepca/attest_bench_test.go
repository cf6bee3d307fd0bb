package main

// The verifier's throughput on loopback (docs/PERFORMANCE.md, "Attestation
// verifier"). Reproduce with:
//
//	go test -run '^$' -bench '^BenchmarkAttest$' -benchtime 20000x ./cmd/scepca/
//
// The server is `scepca serve --dev` built and started as its own process,
// so its CPU time (/proc/<pid>/stat) is apart from the load generator's.
// Per key type, in one run on the same cores:
//
//   - raw: the bound, the one signature verification a proof costs
//     (DESIGN.md §5), on every core;
//   - verify: POST /api/v1/attestation/verify with proofs made before the
//     clock starts: single use enforced (the nonce consumed in the fsync'd
//     write that records the attestation), binding and device record;
//   - round-trip: POST /nonces, the device's signature, POST /verify.
//
// Metrics: ops/s, of-raw-% (ops/s ÷ raw ops/s), server-µs/op and
// client-µs/op (CPU time per operation), cpu-eff-% (raw CPU per
// verification ÷ server CPU per operation: the fraction of the bound the
// server would reach with the cores to itself).

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/client"
	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/loadgen"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
)

// attestParallelism × GOMAXPROCS requests are in flight at once.
const attestParallelism = 32

// attestBenchServer is a `scepca serve --dev` process.
type attestBenchServer struct {
	*testServer
	cpu loadgen.CPUFunc
}

// startAttestBenchServer builds scepca and starts it as a process on a fresh
// data directory; it is killed when the benchmark ends.
func startAttestBenchServer(b *testing.B) *attestBenchServer {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "scepca")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "serve", "--dev", "--data", data, "--listen", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	s := &testServer{Data: data, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}}
	cmd.Stderr = s.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed on purpose
	})
	br := bufio.NewReader(stdout)
	if err := s.readBanner(br); err != nil {
		b.Fatalf("server did not start: %v\n%s", err, s.Stderr.String())
	}
	go io.Copy(io.Discard, br) //nolint:errcheck // drain the rest of stdout
	return &attestBenchServer{testServer: s, cpu: loadgen.ProcessCPU(cmd.Process.Pid)}
}

// attestBenchDevice is an enrolled certificate and its key.
type attestBenchDevice struct {
	id   string
	key  crypto.Signer
	cert *x509.Certificate
}

// enrollAttestBench enrolls n keys from newKey through SCEP with the Go client.
func enrollAttestBench(b *testing.B, s *attestBenchServer, n int, newKey func(i int) crypto.Signer) []attestBenchDevice {
	b.Helper()
	ctx := context.Background()
	sc := &scepclient.Client{URL: s.SCEPURL}
	certs, _, err := sc.GetCACert(ctx)
	if err != nil {
		b.Fatal(err)
	}
	signerKey := testpki.NewRSAKey(b, 2048)
	signer, err := scepclient.SelfSigned(signerKey, "SCEP SIGNER")
	if err != nil {
		b.Fatal(err)
	}
	out := make([]attestBenchDevice, n)
	for i := range out {
		id := fmt.Sprintf("BENCH-%03d", i)
		key := newKey(i)
		csr, err := scepclient.CSR(key, pkix.Name{CommonName: "bench managementAttestation " + id}, s.Secret)
		if err != nil {
			b.Fatal(err)
		}
		r, err := sc.Do(ctx, &scepclient.Message{
			Type: scepclient.TypePKCSReq, TransactionID: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i),
			Signer: signer, Key: signerKey, Recipient: scepclient.Recipient(certs), Content: csr,
			Params: cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAPKCS1v15},
		})
		if err != nil || r.Status != scepclient.StatusSuccess || len(r.Certificates) != 1 {
			b.Fatalf("enroll %s = %+v, %v", id, r, err)
		}
		out[i] = attestBenchDevice{id: id, key: key, cert: r.Certificates[0]}
	}
	return out
}

// attestCPUMeter samples server and client CPU around a timed phase.
type attestCPUMeter struct {
	server       loadgen.CPUFunc
	server0, me0 time.Duration
}

func startAttestCPU(b *testing.B, server loadgen.CPUFunc) *attestCPUMeter {
	m := &attestCPUMeter{server: server}
	var err1, err2 error
	m.server0, err1 = server()
	m.me0, err2 = loadgen.SelfCPU()
	if err := errors.Join(err1, err2); err != nil {
		b.Fatal(err)
	}
	return m
}

// stop reports the CPU per operation of the phase that just ran.
func (m *attestCPUMeter) stop(b *testing.B) (server, client time.Duration) {
	s1, err1 := m.server()
	me1, err2 := loadgen.SelfCPU()
	if err := errors.Join(err1, err2); err != nil {
		b.Fatal(err)
	}
	n := time.Duration(b.N)
	return (s1 - m.server0) / n, (me1 - m.me0) / n
}

func BenchmarkAttest(b *testing.B) {
	keyTypes := []struct {
		name string
		key  func(b *testing.B, i int) crypto.Signer
	}{
		{"ECDSA-P256", func(b *testing.B, _ int) crypto.Signer { return testpki.NewECKey(b, elliptic.P256()) }},
		{"RSA-2048", func(b *testing.B, i int) crypto.Signer { return testpki.RSAKeyN(b, 2048, i) }},
	}
	s := startAttestBenchServer(b)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 1024 // a connection per request in flight, as an IdP keeps
	c := &client.Client{URL: s.URL, Token: s.Token, HTTP: &http.Client{Transport: tr}}
	for _, kt := range keyTypes {
		b.Run(kt.name, func(b *testing.B) {
			devs := enrollAttestBench(b, s, 16, func(i int) crypto.Signer { return kt.key(b, i) })
			var rawRate float64
			var rawCPU time.Duration

			b.Run("raw", func(b *testing.B) {
				d := devs[0]
				req, err := client.SignDesktop(d.key, d.cert, "raw-nonce", d.id, attest.PlatformMacOS, "")
				if err != nil {
					b.Fatal(err)
				}
				p, err := req.Proof()
				if err != nil {
					b.Fatal(err)
				}
				digest := sha256.Sum256(attest.Message(p.Nonce, p.DeviceID))
				cpu := startAttestCPU(b, s.cpu)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if !attestVerifySig(d.cert.PublicKey, digest[:], p.Signature) {
							b.Error("raw verification failed")
							return
						}
					}
				})
				b.StopTimer()
				_, rawCPU = cpu.stop(b)
				rawRate = float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(rawRate, "ops/s")
				b.ReportMetric(float64(rawCPU.Microseconds()), "client-µs/op")
			})

			report := func(b *testing.B, cpu *attestCPUMeter) {
				server, clientCPU := cpu.stop(b)
				rate := float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(rate, "ops/s")
				b.ReportMetric(float64(server.Microseconds()), "server-µs/op")
				b.ReportMetric(float64(clientCPU.Microseconds()), "client-µs/op")
				if rawRate > 0 && server > 0 {
					b.ReportMetric(100*rate/rawRate, "of-raw-%")
					b.ReportMetric(100*float64(rawCPU)/float64(server), "cpu-eff-%")
				}
			}

			b.Run("verify", func(b *testing.B) {
				// Proofs are made before the clock starts, so the device's
				// signing does not compete with the server.
				reqs := make([]*attest.VerifyRequest, b.N)
				var wg sync.WaitGroup
				var next atomic.Int64
				for range 32 {
					wg.Go(func() {
						for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
							d := devs[i%len(devs)]
							n, err := c.Nonce(context.Background())
							if err != nil {
								b.Error(err)
								return
							}
							if reqs[i], err = client.SignDesktop(d.key, d.cert, n.Nonce, d.id, attest.PlatformMacOS, ""); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				var i atomic.Int64
				b.SetParallelism(attestParallelism)
				cpu := startAttestCPU(b, s.cpu)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						dc, err := c.Verify(context.Background(), reqs[i.Add(1)-1])
						if err != nil || !dc.Managed {
							b.Errorf("verify = %+v, %v", dc, err)
							return
						}
					}
				})
				b.StopTimer()
				report(b, cpu)
			})

			b.Run("round-trip", func(b *testing.B) {
				var i atomic.Int64
				b.SetParallelism(attestParallelism)
				cpu := startAttestCPU(b, s.cpu)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						d := devs[int(i.Add(1))%len(devs)]
						dc, err := c.AttestDesktop(context.Background(), d.key, d.cert, d.id, attest.PlatformMacOS, "")
						if err != nil || !dc.Managed {
							b.Errorf("attest = %+v, %v", dc, err)
							return
						}
					}
				})
				b.StopTimer()
				report(b, cpu)
			})
		})
	}
	if strings.Contains(s.Stderr.String(), `"level":"ERROR"`) {
		b.Errorf("server logged errors:\n%s", s.Stderr.String())
	}
}

// attestVerifySig is the raw verification the verifier performs once per proof.
func attestVerifySig(pub crypto.PublicKey, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	}
	return false
}
