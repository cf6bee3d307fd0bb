package main

// Two `scepca serve` processes on one etcd (issue 9): what must hold across
// replicas holds across these two processes, each reached over its own
// listener, with a real etcd (Debian's etcd-server) between them.

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
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
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/etcdtest"
	"github.com/scepca/scepca/internal/loadgen"
	"github.com/scepca/scepca/internal/ndesclient"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/etcd"
)

// replicas are two server processes sharing one etcd prefix, one KEK and
// one admin token, as a load balancer would front them.
type replicas struct {
	etcd       *etcdtest.Server
	prefix     string
	a, b       *testServer
	cmdA, cmdB *exec.Cmd
}

// storeArgs are the flags that put a server on etcd under prefix.
func etcdArgs(srv *etcdtest.Server, prefix string) []string {
	return []string{"--store", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints, ","), "--etcd-prefix", prefix}
}

// startReplicas starts etcd and two `scepca serve --dev` processes on it.
// A starts first and creates the CA and the dev integration; B gets A's
// dev-integration.json so that it reuses that integration.
func startReplicas(t *testing.T) *replicas {
	t.Helper()
	r := &replicas{etcd: etcdtest.Start(t), prefix: "/scepca-replicas-" + rand.Text() + "/"}
	kek := filepath.Join(t.TempDir(), "kek")
	if _, err := ca.GenerateKEKFile(kek); err != nil {
		t.Fatal(err)
	}
	token := rand.Text()
	dirA, dirB := t.TempDir(), t.TempDir()
	for _, d := range []string{dirA, dirB} {
		if err := os.WriteFile(filepath.Join(d, "admin-token"), []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := append(etcdArgs(r.etcd, r.prefix), "--kek-file", kek, "--crl-refresh", "1s")
	r.a, r.cmdA = startProcess(t, dirA, args...)
	dev, err := os.ReadFile(filepath.Join(dirA, "dev-integration.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "dev-integration.json"), dev, 0o600); err != nil {
		t.Fatal(err)
	}
	r.b, r.cmdB = startProcess(t, dirB, args...)
	if r.a.Secret != r.b.Secret || r.a.SCEPURL == r.b.SCEPURL {
		t.Fatalf("replicas serve %s and %s, want one integration behind two URLs", r.a.SCEPURL, r.b.SCEPURL)
	}
	return r
}

// store opens the replicas' etcd prefix directly, as a third reader.
func (r *replicas) store(t *testing.T) *etcd.Store {
	t.Helper()
	st, err := etcd.Open(t.Context(), etcd.Config{Endpoints: r.etcd.Endpoints, Prefix: r.prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// checkStored checks that every certificate the clients received is in
// the store byte for byte, and that no serial was handed out twice.
func checkStored(t *testing.T, st store.CertStore, got *received) {
	t.Helper()
	if len(got.repeats) > 0 {
		t.Errorf("serials received more than once: %v", got.repeats)
	}
	stored, err := st.ListCertificates(t.Context(), store.CertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	bySerial := map[string]*store.Certificate{}
	for _, c := range stored {
		if _, dup := bySerial[c.Serial]; dup {
			t.Errorf("serial %s stored twice", c.Serial)
		}
		bySerial[c.Serial] = c
	}
	for serial, der := range got.certs {
		c, ok := bySerial[serial]
		switch {
		case !ok:
			t.Errorf("certificate %s was answered SUCCESS but is not in the store", serial)
		case !bytes.Equal(c.DER, der):
			t.Errorf("certificate %s in the store differs from the one received", serial)
		}
	}
	if n, err := st.CountCertificates(t.Context()); err != nil || n != len(stored) {
		t.Errorf("CountCertificates() = %d, %v, want %d (listed)", n, err, len(stored))
	}
}

// TestReplicasOnEtcd runs two replicas on one etcd through the checks of
// issue 9, one after another on the same pair (starting processes is the
// slow part).
func TestReplicasOnEtcd(t *testing.T) {
	t.Parallel()
	r := startReplicas(t)
	st := r.store(t)
	ids, err := loadgen.NewIdentities(t.Context(), 16, 2048)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("UniqueSerials", func(t *testing.T) {
		// Concurrent enrollments on both replicas: every one succeeds, with
		// its own serial, and all are on record.
		const workers, each = 6, 8
		got := newReceived()
		clients := []*crashClient{newCrashClient(t, r.a, ids), newCrashClient(t, r.b, ids)}
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				cc := clients[w%2]
				for range each {
					if err := cc.enrollNth(t.Context(), int(next.Add(1)), got); err != nil {
						t.Errorf("replica %c: %v", "AB"[w%2], err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got.len() != workers*each {
			t.Errorf("received %d certificates, want %d", got.len(), workers*each)
		}
		checkStored(t, st, got)
	})

	t.Run("DynamicChallengeOnce", func(t *testing.T) {
		// A challenge minted through A, presented by 20 transactions racing
		// on A and B: exactly one certificate.
		in := createDynamic(t, r.a, "")
		challenge, err := ndesclient.Fetch(t.Context(), nil, in.ChallengeURL, in.Username, in.Password)
		if err != nil {
			t.Fatal(err)
		}
		urls := []string{in.SCEPURL, strings.Replace(in.SCEPURL, r.a.URL, r.b.URL, 1)}
		certs, _ := getCACert(t, urls[1])
		recipient := scepclient.Recipient(certs)
		const n = 20
		msgs := make([]*scepclient.Message, n)
		for i := range msgs {
			key := testpki.RSAKeyN(t, 2048, i%4)
			csr, err := scepclient.CSR(key, pkix.Name{CommonName: fmt.Sprintf("racer%d managementAttestation R%d", i, i)}, challenge)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := scepclient.SelfSigned(key, "SCEP SIGNER")
			if err != nil {
				t.Fatal(err)
			}
			msgs[i] = &scepclient.Message{
				Type: scepclient.TypePKCSReq, TransactionID: fmt.Sprintf("replica-race-%d", i),
				Signer: signer, Key: key, Recipient: recipient, Content: csr,
				Params: cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAPKCS1v15},
			}
		}
		replies := make([]*scepclient.Reply, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				replies[i], errs[i] = (&scepclient.Client{URL: urls[i%2]}).Do(t.Context(), msgs[i])
			})
		}
		close(start)
		wg.Wait()
		var wins []int
		for i := range n {
			switch {
			case errs[i] != nil:
				t.Errorf("racer %d: %v", i, errs[i])
			case replies[i].Status == scepclient.StatusSuccess:
				wins = append(wins, i)
			case replies[i].Status != scepclient.StatusFailure || replies[i].FailInfo != "2":
				t.Errorf("racer %d: status %s failInfo %s, want SUCCESS or FAILURE badRequest", i, replies[i].Status, replies[i].FailInfo)
			}
		}
		if len(wins) != 1 {
			t.Errorf("racers %v got a certificate, want exactly one across both replicas", wins)
		}
	})

	t.Run("NonceOnce", func(t *testing.T) {
		// A nonce minted on A verifies once on B, and is used for A too.
		cert, key, _ := enrollECDSA(t, r.a, t.TempDir(), "alice managementAttestation REPLICA-1")
		for _, mint := range []struct {
			name     string
			on, with *testServer
		}{{"minted on A", r.a, r.b}, {"minted on B", r.b, r.a}} {
			n := nonce(t, mint.on)
			req, err := client.SignDesktop(key, cert, n, "REPLICA-1", attest.PlatformMacOS, "")
			if err != nil {
				t.Fatal(err)
			}
			wantContext(t, mint.name+", verified on the other", verifyRaw(t, mint.with, req), attest.ReasonManaged)
			wantContext(t, mint.name+", replayed there", verifyRaw(t, mint.with, req), attest.ReasonNonceUsed)
			wantContext(t, mint.name+", replayed where minted", verifyRaw(t, mint.on, req), attest.ReasonNonceUsed)
		}
	})

	t.Run("RevocationAcrossReplicas", func(t *testing.T) {
		// A device deleted through A: B's verifier refuses its certificate
		// and B's OCSP answers revoked at once (both read etcd on every
		// request); B's CRL, cached, lists it within --crl-refresh (1 s
		// here). openssl checks B's OCSP answers and CRLs.
		dir := t.TempDir()
		cert, key, _ := enrollECDSA(t, r.a, dir, "frank managementAttestation REPLICA-REV")
		certPath := filepath.Join(dir, "cert.pem")
		writePEMFile(t, certPath, "CERTIFICATE", cert.Raw)
		serial := opensslSerial(cert)
		dc, err := attestClient(r.b).AttestDesktop(t.Context(), key, cert, "REPLICA-REV", attest.PlatformMacOS, "")
		if err != nil {
			t.Fatal(err)
		}
		wantContext(t, "attest on B", dc, attest.ReasonManaged)
		rb := newRevocationClient(t, r.b)
		wantOCSP(t, "B's OCSP before the revocation", rb.ocsp(t, certPath), certPath, "good", "")
		wantCRL(t, "B's CRL before the revocation (now cached)", rb.crl(t), serial, "")

		if resp := r.a.API(t, http.MethodDelete, "/api/v1/devices/REPLICA-REV", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE device on A = %d", resp.StatusCode)
		}
		wantOCSP(t, "B's OCSP after the revocation on A", rb.ocsp(t, certPath), certPath, "revoked", "")
		dc, err = attestClient(r.b).AttestDesktop(t.Context(), key, cert, "REPLICA-REV", attest.PlatformMacOS, "")
		if err != nil {
			t.Fatal(err)
		}
		wantContext(t, "attest on B after the revocation on A", dc, attest.ReasonCertRevoked)

		// The CRL: re-read until B's cache has been refreshed. The
		// watchdog is 30 times the bound; the wait is B's, not a sleep.
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(30 * time.Second)
		for out := rb.crl(t); !strings.Contains(out, "Serial Number: "+serial+"\n"); out = rb.crl(t) {
			if time.Now().After(deadline) {
				t.Fatalf("B's CRL does not list %s 30 s after its revocation on A (--crl-refresh 1s):\n%s", serial, out)
			}
			<-tick.C
		}
		certs, _ := getCACert(t, r.b.SCEPURL)
		crl, err := x509.ParseRevocationList(getCRLSCEP(t, r.b, certs[0], cert.SerialNumber))
		if err != nil {
			t.Fatal(err)
		}
		listed := false
		for _, e := range crl.RevokedCertificateEntries {
			listed = listed || e.SerialNumber.Cmp(cert.SerialNumber) == 0
		}
		if !listed {
			t.Errorf("B's SCEP GetCRL does not list %s once its /crl does", serial)
		}
	})

	t.Run("KillOneDuringBurst", func(t *testing.T) {
		// Enrollments on both replicas; A is killed (SIGKILL) in the middle
		// of them. Everything answered SUCCESS is on record, no serial
		// repeats, B carries on, and each transaction cut off on A, retried
		// on B, gets SUCCESS with its certificate or PENDING (A's durable
		// claim holds it until its lease ends), never a second certificate.
		const workers, killAfter, afterKill = 6, 24, 24
		got := newReceived()
		clients := []*crashClient{newCrashClient(t, r.a, ids), newCrashClient(t, r.b, ids)}
		var (
			next, successes, afterKillCount atomic.Int64
			killed                          atomic.Bool
			killOnce                        sync.Once
			mu                              sync.Mutex
			interrupted                     []*scepclient.Message
			wg                              sync.WaitGroup
		)
		for w := range workers {
			wg.Go(func() {
				onA := w%2 == 0
				for afterKillCount.Load() < afterKill {
					cc := clients[1]
					if onA {
						cc = clients[0]
					}
					m, err := cc.message(10_000 + int(next.Add(1)))
					if err != nil {
						t.Error(err)
						return
					}
					wasKilled := killed.Load()
					status, err := cc.enroll(t.Context(), m, got)
					switch {
					case err != nil && onA && killed.Load():
						mu.Lock()
						interrupted = append(interrupted, m)
						mu.Unlock()
						onA = false // the load balancer takes A out
						continue
					case err != nil || status != scepclient.StatusSuccess:
						t.Errorf("enroll %s (replica A: %v): status %q, %v, want SUCCESS", m.TransactionID, onA, status, err)
						return
					}
					if wasKilled {
						afterKillCount.Add(1)
					}
					if successes.Add(1) >= killAfter {
						killOnce.Do(func() {
							killed.Store(true)
							if err := r.cmdA.Process.Kill(); err != nil {
								t.Errorf("kill A: %v", err)
							}
						})
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for _, m := range interrupted {
			m.SenderNonce = nil // a new message of the same transaction
			status, err := clients[1].enroll(t.Context(), m, got)
			if err != nil || (status != scepclient.StatusSuccess && status != scepclient.StatusPending) {
				t.Errorf("retry of %s on B: status %q, %v, want SUCCESS or PENDING", m.TransactionID, status, err)
			}
		}
		t.Logf("A killed after %d SUCCESS replies; %d transactions cut off; %d certificates received", killAfter, len(interrupted), got.len())
		checkStored(t, st, got)
		// B still issues.
		m, err := clients[1].message(99_999)
		if err != nil {
			t.Fatal(err)
		}
		if status, err := clients[1].enroll(t.Context(), m, got); err != nil || status != scepclient.StatusSuccess {
			t.Errorf("enroll on B after the kill: status %q, %v, want SUCCESS", status, err)
		}
	})
}

// TestInitCAOnEtcdRace: replicas starting together on an empty prefix
// create one CA between them (initCA holds etcd's lock), and every one of
// them opens it.
func TestInitCAOnEtcdRace(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	prefix := "/scepca-init-race-" + rand.Text() + "/"
	kek, err := ca.GenerateKEKFile(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	ids := make([]string, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		st, err := etcd.Open(t.Context(), etcd.Config{Endpoints: srv.Endpoints, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		wg.Go(func() {
			a, c, err := initCA(t.Context(), st, st, kek, ca.Config{Org: "Race", KeyType: "rsa", PublicURL: "http://127.0.0.1:8080"})
			if err != nil {
				t.Errorf("initCA on replica %d = %v", i, err)
				return
			}
			ids[i], created[i] = a.IntermediateID(), c
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if created[i] {
			creators++
		}
		if ids[i] != ids[0] {
			t.Errorf("replica %d opened intermediate %s, replica 0 %s: want one CA", i, ids[i], ids[0])
		}
	}
	if creators != 1 {
		t.Errorf("%d replicas created a CA, want 1", creators)
	}
}

// TestRotateOnEtcdRace: replicas asked to rotate at once stage one
// successor between them (caLifecycle holds etcd's lock around the CA's
// rotation steps); the others are told one is already staged.
func TestRotateOnEtcdRace(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	prefix := "/scepca-rotate-race-" + rand.Text() + "/"
	kek, err := ca.GenerateKEKFile(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	lifecycles := make([]caLifecycle, n)
	for i := range n {
		st, err := etcd.Open(t.Context(), etcd.Config{Endpoints: srv.Endpoints, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		a, _, err := initCA(t.Context(), st, st, kek, ca.Config{Org: "Race", KeyType: "rsa", PublicURL: "http://127.0.0.1:8080"})
		if err != nil {
			t.Fatal(err)
		}
		lifecycles[i] = caLifecycle{a, st}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = lifecycles[i].Rotate(t.Context(), ca.RotateOptions{Actor: "test"})
		})
	}
	wg.Wait()
	staged := 0
	for i, err := range errs {
		switch {
		case err == nil:
			staged++
		case !errors.Is(err, ca.ErrLifecycle):
			t.Errorf("Rotate on replica %d = %v, want nil or %v", i, err, ca.ErrLifecycle)
		}
	}
	if staged != 1 {
		t.Errorf("%d replicas staged a successor, want 1", staged)
	}
}
