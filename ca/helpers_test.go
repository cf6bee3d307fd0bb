package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/syncbuf"
	"github.com/scepca/scepca/store"
)

// testNow is the injected clock of every test authority.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testPublicURL = "https://ca.example.com"

// testKEKBytes is the raw key of testKEK.
var testKEKBytes = bytes.Repeat([]byte{0x42}, kekSize)

func testKEK(t testing.TB) *KEK {
	t.Helper()
	k, err := ParseKEK([]byte(base64.StdEncoding.EncodeToString(testKEKBytes)))
	if err != nil {
		t.Fatalf("ParseKEK() = %v", err)
	}
	return k
}

// RSA key generation dominates test time (and 3072/4096 bits take seconds
// under -race), so every key is generated once per test binary.
type rsaKeyID struct{ bits, n int }

var rsaKeyCache sync.Map // rsaKeyID → func() (*rsa.PrivateKey, error)

// cachedRSAKey returns the n-th cached RSA key of the given size.
func cachedRSAKey(t testing.TB, bits, n int) *rsa.PrivateKey {
	t.Helper()
	f, _ := rsaKeyCache.LoadOrStore(rsaKeyID{bits, n}, sync.OnceValues(func() (*rsa.PrivateKey, error) {
		return rsa.GenerateKey(rand.Reader, bits)
	}))
	k, err := f.(func() (*rsa.PrivateKey, error))()
	if err != nil {
		t.Fatalf("rsa.GenerateKey(%d) = %v", bits, err)
	}
	return k
}

// caKeys hands cached RSA-2048 keys 100, 101, … to one Init, so that root,
// intermediate and RA keys differ.
func caKeys(t testing.TB) func() (*rsa.PrivateKey, error) {
	var n atomic.Int32
	return func() (*rsa.PrivateKey, error) {
		return cachedRSAKey(t, 2048, 100+int(n.Add(1))), nil
	}
}

func ecdsaKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatalf("ecdsa.GenerateKey(%s) = %v", c.Params().Name, err)
	}
	return k
}

// testConfig is the configuration of test authorities: a fixed clock, a
// public URL and cached RSA keys.
func testConfig(t testing.TB, keyType string) Config {
	return Config{
		KeyType:   keyType,
		PublicURL: testPublicURL,
		Now:       func() time.Time { return testNow },
		rsaKey:    caKeys(t),
	}
}

// newTestAuthority initialises an authority of keyType over a fresh fake store.
func newTestAuthority(t testing.TB, keyType string) (*Authority, *memStore) {
	t.Helper()
	st := newMemStore()
	a, err := Init(t.Context(), st, testKEK(t), testConfig(t, keyType))
	if err != nil {
		t.Fatalf("Init(%q) = %v", keyType, err)
	}
	return a, st
}

// newCSR signs tmpl with key and parses the result.
func newCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("CreateCertificateRequest() = %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatalf("ParseCertificateRequest() = %v", err)
	}
	return csr
}

// oktaCSR is a CSR as an Okta management-attestation profile makes it.
func oktaCSR(t testing.TB, key crypto.Signer, user, device string) *x509.CertificateRequest {
	t.Helper()
	return newCSR(t, key, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: user + " managementAttestation " + device},
	})
}

// issue prepares and issues one certificate.
func issue(t testing.TB, a *Authority, req *Request) (*x509.Certificate, *store.Certificate) {
	t.Helper()
	tok, err := a.Prepare(t.Context(), req)
	if err != nil {
		t.Fatalf("Prepare() = %v", err)
	}
	cert, rec, err := a.Issue(t.Context(), tok)
	if err != nil {
		t.Fatalf("Issue() = %v", err)
	}
	return cert, rec
}

// memStore is an in-memory fake of the two roles ca uses. It honours the
// contract: CreateCA and PutCertificate are put-if-absent (store.ErrExists),
// records are copied in and out.
type memStore struct {
	mu    sync.Mutex
	cas   map[string]store.CA
	certs map[string]store.Certificate
}

var _ Stores = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{cas: map[string]store.CA{}, certs: map[string]store.Certificate{}}
}

func cloneCA(c store.CA) *store.CA {
	c.CertDER = bytes.Clone(c.CertDER)
	c.KeyCiphertext = bytes.Clone(c.KeyCiphertext)
	return &c
}

func cloneCert(c store.Certificate) *store.Certificate {
	c.DER = bytes.Clone(c.DER)
	c.PublicKeyHash = bytes.Clone(c.PublicKeyHash)
	return &c
}

func (m *memStore) CreateCA(ctx context.Context, c *store.CA) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cas[c.ID]; ok {
		return fmt.Errorf("mem: create CA %s: %w", c.ID, store.ErrExists)
	}
	m.cas[c.ID] = *cloneCA(*c)
	return nil
}

func (m *memStore) UpdateCA(ctx context.Context, c *store.CA) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cas[c.ID]; !ok {
		return fmt.Errorf("mem: update CA %s: %w", c.ID, store.ErrNotFound)
	}
	m.cas[c.ID] = *cloneCA(*c)
	return nil
}

func (m *memStore) GetCA(ctx context.Context, id string) (*store.CA, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cas[id]
	if !ok {
		return nil, fmt.Errorf("mem: get CA %s: %w", id, store.ErrNotFound)
	}
	return cloneCA(c), nil
}

func (m *memStore) ListCAs(ctx context.Context) ([]*store.CA, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*store.CA, 0, len(m.cas))
	for _, c := range m.cas {
		out = append(out, cloneCA(c))
	}
	slices.SortFunc(out, func(x, y *store.CA) int { return x.CreatedAt.Compare(y.CreatedAt) })
	return out, nil
}

func (m *memStore) DeleteCA(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cas[id]; !ok {
		return fmt.Errorf("mem: delete CA %s: %w", id, store.ErrNotFound)
	}
	delete(m.cas, id)
	return nil
}

func (m *memStore) PutCertificate(ctx context.Context, c *store.Certificate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.certs[c.Serial]; ok {
		return fmt.Errorf("mem: put certificate %s: %w", c.Serial, store.ErrExists)
	}
	m.certs[c.Serial] = *cloneCert(*c)
	return nil
}

func (m *memStore) GetCertificate(ctx context.Context, serial string) (*store.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.certs[serial]
	if !ok {
		return nil, fmt.Errorf("mem: get certificate %s: %w", serial, store.ErrNotFound)
	}
	return cloneCert(c), nil
}

func (m *memStore) ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*store.Certificate
	for _, c := range m.certs {
		if (f.IntegrationID == "" || f.IntegrationID == c.IntegrationID) &&
			(f.CAID == "" || f.CAID == c.CAID) && (f.Status == "" || f.Status == c.Status) {
			out = append(out, cloneCert(c))
		}
	}
	slices.SortFunc(out, func(x, y *store.Certificate) int { return x.IssuedAt.Compare(y.IssuedAt) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (m *memStore) UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.certs[serial]
	if !ok {
		return fmt.Errorf("mem: update certificate %s: %w", serial, store.ErrNotFound)
	}
	c.Status, c.RevokedAt, c.RevocationReason = status, at, reason
	m.certs[serial] = c
	return nil
}

func (m *memStore) CountCertificates(ctx context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.certs), nil
}

// collidingStore answers the first n PutCertificate calls with
// store.ErrExists, as if the serial were taken, and remembers the serials
// it was offered.
type collidingStore struct {
	*memStore
	left    atomic.Int32
	mu      sync.Mutex
	offered []string
}

func (c *collidingStore) PutCertificate(ctx context.Context, rec *store.Certificate) error {
	c.mu.Lock()
	c.offered = append(c.offered, rec.Serial)
	c.mu.Unlock()
	if c.left.Add(-1) >= 0 {
		return fmt.Errorf("colliding: put certificate %s: %w", rec.Serial, store.ErrExists)
	}
	return c.memStore.PutCertificate(ctx, rec)
}

// syncBuffer collects output written by concurrent goroutines.
type syncBuffer = syncbuf.Buffer

var p256 = elliptic.P256()

// newJSONLogger logs JSON lines to w, as cmd configures the audit logger.
func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}
