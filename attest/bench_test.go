package attest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/client"
	"github.com/scepca/scepca/internal/loadgen"
	"github.com/scepca/scepca/internal/testpki"
)

// BenchmarkVerify measures the verifier's core without HTTP: Verify on
// decoded proofs over a bbolt store (each nonce consumed durably, binding
// and device recorded), beside the raw signature verification it must do
// once per proof, on the same cores in the same run. Nonces are minted and
// proofs signed before the clock starts. cpu-µs/op is this process's CPU
// time per operation; cpu-eff-% is raw CPU ÷ verify CPU. docs/PERFORMANCE.md
// reports it:
//
//	go test -run '^$' -bench '^BenchmarkVerify' -benchtime 20000x ./attest/
//	TMPDIR=/dev/shm go test …   # the store on tmpfs: no disk flush
func BenchmarkVerify(b *testing.B) {
	for _, kt := range []struct {
		name string
		key  func(i int) crypto.Signer
	}{
		{"ECDSA-P256", func(int) crypto.Signer { return testpki.NewECKey(b, elliptic.P256()) }},
		{"RSA-2048", func(i int) crypto.Signer { return testpki.RSAKeyN(b, 2048, i) }},
	} {
		b.Run(kt.name, func(b *testing.B) {
			f := newFixture(b, "")
			const devices = 16
			keys := make([]crypto.Signer, devices)
			certs := make([]*x509.Certificate, devices)
			for i := range keys {
				keys[i] = kt.key(i)
				certs[i] = f.issue(b, keys[i], fmt.Sprintf("bench managementAttestation D%d", i))
			}
			var rawRate float64
			var rawCPU time.Duration
			b.Run("raw", func(b *testing.B) {
				req, err := client.SignDesktop(keys[0], certs[0], "n", "D0", attest.PlatformMacOS, "")
				if err != nil {
					b.Fatal(err)
				}
				p := decode(b, req)
				digest := sha256.Sum256(attest.Message(p.Nonce, p.DeviceID))
				cpu0 := selfCPU(b)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						var ok bool
						switch k := certs[0].PublicKey.(type) {
						case *ecdsa.PublicKey:
							ok = ecdsa.VerifyASN1(k, digest[:], p.Signature)
						case *rsa.PublicKey:
							ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], p.Signature) == nil
						}
						if !ok {
							b.Error("raw verification failed")
							return
						}
					}
				})
				b.StopTimer()
				rawCPU = (selfCPU(b) - cpu0) / time.Duration(b.N)
				rawRate = float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(rawRate, "ops/s")
				b.ReportMetric(float64(rawCPU.Microseconds()), "cpu-µs/op")
			})
			b.Run("verify", func(b *testing.B) {
				proofs := make([]*attest.Proof, b.N)
				for i := range proofs {
					d := i % devices
					req, err := client.SignDesktop(keys[d], certs[d], f.nonce(b), fmt.Sprintf("D%d", d), attest.PlatformMacOS, "")
					if err != nil {
						b.Fatal(err)
					}
					proofs[i] = decode(b, req)
				}
				var next atomic.Int64
				b.SetParallelism(32)
				cpu0 := selfCPU(b)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						dc, err := f.verifier.Verify(b.Context(), proofs[next.Add(1)-1])
						if err != nil || !dc.Managed {
							b.Errorf("Verify() = %+v, %v", dc, err)
							return
						}
					}
				})
				b.StopTimer()
				cpu := (selfCPU(b) - cpu0) / time.Duration(b.N)
				rate := float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(rate, "ops/s")
				b.ReportMetric(float64(cpu.Microseconds()), "cpu-µs/op")
				if rawRate > 0 && cpu > 0 {
					b.ReportMetric(100*rate/rawRate, "of-raw-%")
					b.ReportMetric(100*float64(rawCPU)/float64(cpu), "cpu-eff-%")
				}
			})
		})
	}
}

// selfCPU is this process's CPU time so far.
func selfCPU(b *testing.B) time.Duration {
	d, err := loadgen.SelfCPU()
	if err != nil {
		b.Fatal(err)
	}
	return d
}
