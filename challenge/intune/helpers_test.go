package intune

import (
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/challenge/intune/intunefake"
	"github.com/scepca/scepca/internal/syncbuf"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
)

// clock is an injectable, advanceable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects output written by concurrent goroutines.
type syncBuffer = syncbuf.Buffer

// testKEK is the key-encryption key sealing test secrets.
func testKEK(tb testing.TB) *ca.KEK {
	tb.Helper()
	k, err := ca.ParseKEK([]byte(strings.Repeat("4b", 32)))
	if err != nil {
		tb.Fatalf("ParseKEK() = %v", err)
	}
	return k
}

// fixture is a Validator wired to a strict fake.
type fixture struct {
	fake  *intunefake.Server
	v     *Validator
	clock *clock
	log   *syncBuffer
	kek   *ca.KEK
	integ *store.Integration
}

type fixtureOption func(*Config)

func withCallTimeout(d time.Duration) fixtureOption { return func(c *Config) { c.CallTimeout = d } }

func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	f := &fixture{fake: intunefake.Start(t, intunefake.Config{}), clock: newClock(), log: &syncBuffer{}, kek: testKEK(t)}
	cfg := Config{
		Opener:     f.kek,
		CallerInfo: "scepca/test",
		Now:        f.clock.Now,
		Logger:     slog.New(slog.NewJSONHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	f.v = v
	f.integ = f.integration(t, "int-"+strings.ReplaceAll(t.Name(), "/", "-"), f.fake.ClientSecret())
	return f
}

// integration is an INTUNE integration pointing at the fake with secret
// sealed under the fixture's KEK.
func (f *fixture) integration(t *testing.T, id, secret string) *store.Integration {
	t.Helper()
	ct, err := f.kek.Seal([]byte(secret), []byte(id))
	if err != nil {
		t.Fatalf("Seal() = %v", err)
	}
	return &store.Integration{
		ID:                     id,
		Name:                   "Intune",
		Platform:               store.PlatformDesktop,
		ChallengeType:          store.ChallengeIntune,
		Enabled:                true,
		IntuneTenant:           f.fake.Tenant(),
		IntuneClientID:         f.fake.ClientID(),
		IntuneSecretCiphertext: ct,
		IntuneAuthorityURL:     f.fake.URL,
		IntuneGraphURL:         f.fake.URL + "/",
	}
}

// request is an enrollment request carrying pw, with a fresh ECDSA key.
func (f *fixture) request(t *testing.T, txID, pw string) challenge.Request {
	t.Helper()
	key := testpki.NewECKey(t, elliptic.P256())
	der := testpki.CSR(t, key, pkix.Name{CommonName: "alice ManagementAttestation " + txID}, pw)
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatalf("ParseCertificateRequest() = %v", err)
	}
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return challenge.Request{Integration: f.integ, Password: challenge.Secret(pw), TransactionID: txID, PublicKeyHash: sum[:], CSR: csr}
}

// counts is what the fake counted.
type counts struct {
	graphTokens, intuneTokens, discovery, validate, success, failure int
}

func (f *fixture) counts() counts {
	return counts{
		graphTokens:  f.fake.TokenRequests(intunefake.GraphScope),
		intuneTokens: f.fake.TokenRequests(intunefake.IntuneScope),
		discovery:    f.fake.DiscoveryRequests(),
		validate:     f.fake.ActionRequests(intunefake.ActionValidate),
		success:      f.fake.ActionRequests(intunefake.ActionSuccess),
		failure:      f.fake.ActionRequests(intunefake.ActionFailure),
	}
}

// issue makes a certificate for req's CSR key, as the CA would.
func issue(t *testing.T, req challenge.Request) *x509.Certificate {
	t.Helper()
	return testpki.CA(t).Issue(t, req.CSR.PublicKey, req.CSR.Subject.CommonName)
}
