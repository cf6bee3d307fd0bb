package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/loadgen"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// received is what the clients got back: every certificate of a SUCCESS
// reply, by serial, and every serial seen more than once.
type received struct {
	mu      sync.Mutex
	certs   map[string][]byte // serial → DER
	byTx    map[string]string // transactionID → serial
	repeats []string
}

func newReceived() *received {
	return &received{certs: map[string][]byte{}, byTx: map[string]string{}}
}

// add records the certificate a SUCCESS reply to transaction txID carried.
// A retry of the same transaction may legitimately return the certificate
// it was issued before (idempotency), any other repeated serial is a reuse.
func (r *received) add(txID string, cert *x509.Certificate) {
	serial := ca.SerialString(cert.SerialNumber)
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.byTx[txID]; ok {
		if prev != serial {
			r.repeats = append(r.repeats, fmt.Sprintf("transaction %s answered with %s and %s", txID, prev, serial))
		}
		return
	}
	if _, ok := r.certs[serial]; ok {
		r.repeats = append(r.repeats, "serial "+serial)
	}
	r.certs[serial] = cert.Raw
	r.byTx[txID] = serial
}

func (r *received) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.certs)
}

// crashClient enrolls against one running server.
type crashClient struct {
	c         *scepclient.Client
	recipient *x509.Certificate
	challenge string
	ids       []loadgen.Identity
}

func newCrashClient(t *testing.T, s *testServer, ids []loadgen.Identity) *crashClient {
	t.Helper()
	c := &scepclient.Client{URL: s.SCEPURL, HTTP: loadgen.NewHTTPClient(16)}
	certs, _, err := c.GetCACert(t.Context())
	if err != nil {
		t.Fatalf("GetCACert: %v", err)
	}
	return &crashClient{c: c, recipient: scepclient.Recipient(certs), challenge: s.Secret, ids: ids}
}

// message builds a PKCSReq: a fresh transaction and subject on a pooled key.
func (cc *crashClient) message(n int) (*scepclient.Message, error) {
	id := &cc.ids[n%len(cc.ids)]
	cn := fmt.Sprintf("crash-%d managementAttestation UDID-%d", n, n)
	csr, err := scepclient.CSR(id.Key, pkix.Name{CommonName: cn}, cc.challenge)
	if err != nil {
		return nil, err
	}
	return &scepclient.Message{
		Type:          scepclient.TypePKCSReq,
		TransactionID: fmt.Sprintf("crash-tx-%d", n),
		Signer:        id.Cert,
		Key:           id.Key,
		Recipient:     cc.recipient,
		Content:       csr,
		Params:        loadgen.DefaultParams,
	}, nil
}

// enrollNth builds the n-th message and enrolls it; an error unless the
// answer is SUCCESS.
func (cc *crashClient) enrollNth(ctx context.Context, n int, got *received) error {
	m, err := cc.message(n)
	if err != nil {
		return err
	}
	status, err := cc.enroll(ctx, m, got)
	if err != nil {
		return fmt.Errorf("enroll %s: %w", m.TransactionID, err)
	}
	if status != scepclient.StatusSuccess {
		return fmt.Errorf("enroll %s: status %q, want SUCCESS", m.TransactionID, status)
	}
	return nil
}

// enroll sends m and records a SUCCESS. It returns the reply status, or an
// error when no verified reply came back.
func (cc *crashClient) enroll(ctx context.Context, m *scepclient.Message, got *received) (string, error) {
	rep, err := cc.c.Do(ctx, m)
	if err != nil {
		return "", err
	}
	if rep.Status != scepclient.StatusSuccess {
		return rep.Status, nil
	}
	if len(rep.Certificates) != 1 {
		return rep.Status, fmt.Errorf("SUCCESS with %d certificates", len(rep.Certificates))
	}
	got.add(m.TransactionID, rep.Certificates[0])
	return rep.Status, nil
}

// TestCrashKill9UnderLoad kills the server with SIGKILL while eight
// clients enroll, restarts it on the same data directory and checks
// DESIGN.md §5: every certificate a client was answered SUCCESS for is in
// the store byte for byte, and no serial is handed out twice.
func TestCrashKill9UnderLoad(t *testing.T) {
	t.Parallel()
	const (
		workers      = 8
		killAfter    = 100 // SUCCESS replies before the kill
		afterRestart = 12  // enrollments after the restart
	)
	ids, err := loadgen.NewIdentities(t.Context(), 64, 2048)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	got := newReceived()

	s1, cmd1 := startProcess(t, data)
	cc := newCrashClient(t, s1, ids)
	var (
		next        atomic.Int64
		successes   atomic.Int64
		killed      atomic.Bool
		killOnce    sync.Once
		interrupted sync.Map // transactionID → *scepclient.Message without a reply
		wg          sync.WaitGroup
		errMu       sync.Mutex
		errs        []error
	)
	for range workers {
		wg.Go(func() {
			for !killed.Load() {
				m, err := cc.message(int(next.Add(1)))
				if err != nil {
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
					return
				}
				status, err := cc.enroll(t.Context(), m, got)
				switch {
				case err != nil && killed.Load():
					interrupted.Store(m.TransactionID, m) // in flight at the kill
					return
				case err != nil || status != scepclient.StatusSuccess:
					errMu.Lock()
					errs = append(errs, fmt.Errorf("before the kill: %s: status %q, %v", m.TransactionID, status, err))
					errMu.Unlock()
					return
				}
				if successes.Add(1) >= killAfter {
					killOnce.Do(func() {
						killed.Store(true)
						if err := cmd1.Process.Kill(); err != nil {
							t.Errorf("kill: %v", err)
						}
					})
				}
			}
		})
	}
	wg.Wait()
	if err := s1.Stop(); err != nil { // waits for the process to be gone
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("enrollment failed before the kill: %v", errors.Join(errs...))
	}
	before := got.len()
	t.Logf("killed after %d SUCCESS replies; %d distinct certificates received", successes.Load(), before)

	s2, _ := startProcess(t, data)
	cc = newCrashClient(t, s2, ids)
	// The transactions cut off by the kill, retried: SUCCESS with the
	// certificate they got (if it was committed with their record) or a
	// fresh one; never a second certificate, and never PENDING: a claim
	// still PENDING lived in the dead process's memory only (store/bolt),
	// so no lease of it outlives the crash.
	retried := 0
	interrupted.Range(func(_, v any) bool {
		m := v.(*scepclient.Message)
		m.SenderNonce = nil // a new message of the same transaction
		m.Recipient = cc.recipient
		if status, err := cc.enroll(t.Context(), m, got); err != nil || status != scepclient.StatusSuccess {
			t.Errorf("retry of %s after restart: status %q, %v, want SUCCESS", m.TransactionID, status, err)
		}
		retried++
		return true
	})
	for i := range afterRestart {
		if err := cc.enrollNth(t.Context(), 1_000_000+i, got); err != nil {
			t.Fatalf("enrollment after restart: %v", err)
		}
	}
	if err := s2.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("retried %d interrupted transactions; %d certificates received in all", retried, got.len())

	db, err := bolt.Open(filepath.Join(data, "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	stored, err := db.ListCertificates(ctx, store.CertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	bySerial := map[string]*store.Certificate{}
	for _, c := range stored {
		if _, dup := bySerial[c.Serial]; dup {
			t.Errorf("serial %s stored twice", c.Serial)
		}
		bySerial[c.Serial] = c
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			t.Errorf("stored certificate %s: %v", c.Serial, err)
		} else if s := ca.SerialString(cert.SerialNumber); s != c.Serial {
			t.Errorf("record %s holds a certificate with serial %s", c.Serial, s)
		}
	}
	if len(got.repeats) > 0 {
		t.Errorf("serials received more than once: %v", got.repeats)
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
	n, err := db.CountCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < got.len() || n != len(stored) {
		t.Errorf("CountCertificates() = %d, want >= %d received and = %d listed", n, got.len(), len(stored))
	}
	if got.len() < killAfter+afterRestart {
		t.Errorf("received %d certificates, want at least %d", got.len(), killAfter+afterRestart)
	}
}
