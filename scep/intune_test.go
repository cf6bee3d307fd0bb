package scep_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/challenge/intune"
	"github.com/scepca/scepca/challenge/intune/intunefake"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/scep"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// Intune delegation through the SCEP service (PROTOCOLS.md §3.7, §5 items
// 14–17): the order validate → sign → successNotification → SUCCESS and
// every failure path, against the strict fake.

// faultyCA injects failures after validation: a policy refusal at Prepare
// or a signing/storage error at Issue.
type faultyCA struct {
	*ca.Authority
	prepareErr error
	issueErr   error
}

func (c *faultyCA) Prepare(ctx context.Context, req *ca.Request) (*ca.Token, error) {
	if c.prepareErr != nil {
		return nil, c.prepareErr
	}
	return c.Authority.Prepare(ctx, req)
}

func (c *faultyCA) Issue(ctx context.Context, tok *ca.Token) (*x509.Certificate, *store.Certificate, error) {
	if c.issueErr != nil {
		return nil, nil, c.issueErr
	}
	return c.Authority.Issue(ctx, tok)
}

// intuneEndpoint is an INTUNE integration of its own fixture, wired to a
// fresh fake, with the challenge the fake accepts.
type intuneEndpoint struct {
	*endpoint
	fake  *intunefake.Server
	v     *intune.Validator
	ca    *faultyCA
	audit *auditBuffer
}

type intuneConfig struct {
	callTimeout time.Duration
	budget      time.Duration
}

func newIntuneEndpoint(t *testing.T, cfg intuneConfig) *intuneEndpoint {
	t.Helper()
	recs, err := caRecords[ca.KeyTypeRSA]()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, rec := range recs {
		c := *rec
		if err := st.CreateCA(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	authority, err := ca.Open(ctx, st, testKEK(t), ca.Config{PublicURL: testPublicURL})
	if err != nil {
		t.Fatal(err)
	}
	fake := intunefake.Start(t, intunefake.Config{})
	v, err := intune.New(intune.Config{Opener: testKEK(t), CallTimeout: cfg.callTimeout, Budget: cfg.budget, CallerInfo: "scepca/test"})
	if err != nil {
		t.Fatal(err)
	}
	faulty := &faultyCA{Authority: authority}
	audit := &auditBuffer{}
	svc, err := scep.NewService(scep.Config{
		CA:    faulty,
		Store: st,
		Validators: map[string]challenge.Validator{
			store.ChallengeStatic: challenge.Static{},
			store.ChallengeIntune: v,
		},
		Audit: slog.New(slog.NewJSONHandler(audit, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	scep.NewHandler(svc).Register(mux)
	srv := httptest.NewServer(reqlog.Middleware(slog.New(slog.DiscardHandler), nil)(reqlog.LimitBody(maxBody)(mux)))
	t.Cleanup(srv.Close)
	recipient, _ := authority.Recipient()
	f := &fixture{store: st, ca: authority, svc: svc, srv: srv, recipient: recipient}

	id := "int-" + randomHex(t, 8)
	sealed, err := testKEK(t).Seal([]byte(fake.ClientSecret()), []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	integ := &store.Integration{
		ID: id, Name: "Intune", Platform: store.PlatformDesktop, ChallengeType: store.ChallengeIntune, Enabled: true,
		IntuneTenant: fake.Tenant(), IntuneClientID: fake.ClientID(), IntuneSecretCiphertext: sealed,
		IntuneAuthorityURL: fake.URL, IntuneGraphURL: fake.URL,
	}
	if err := st.CreateIntegration(ctx, integ); err != nil {
		t.Fatal(err)
	}
	const challengePassword = "intune-signed-blob-0001"
	fake.Accept(challengePassword)
	e := &endpoint{f: f, integ: integ, secret: challengePassword, url: srv.URL + "/scep/" + id}
	return &intuneEndpoint{endpoint: e, fake: fake, v: v, ca: faulty, audit: audit}
}

// calls is what the fake counted, for before/after comparisons.
type calls struct {
	tokens, discovery, validate, success, failure int
}

func (e *intuneEndpoint) calls() calls {
	return calls{
		tokens:    e.fake.TokenRequests(intunefake.GraphScope) + e.fake.TokenRequests(intunefake.IntuneScope),
		discovery: e.fake.DiscoveryRequests(),
		validate:  e.fake.ActionRequests(intunefake.ActionValidate),
		success:   e.fake.ActionRequests(intunefake.ActionSuccess),
		failure:   e.fake.ActionRequests(intunefake.ActionFailure),
	}
}

// certs returns the integration's certificate records.
func (e *intuneEndpoint) certs(t *testing.T) []*store.Certificate {
	t.Helper()
	certs, err := e.f.store.ListCertificates(t.Context(), storeFilter(e.endpoint))
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

// TestIntuneEnroll is §5 item 14: validate, sign, successNotification with
// the certificate's thumbprint, then SUCCESS; a retry after that gets the
// same certificate without a single call to Intune (§5 item 17).
func TestIntuneEnroll(t *testing.T) {
	t.Parallel()
	e := newIntuneEndpoint(t, intuneConfig{})
	m, cert := e.enroll(t)

	if got, want := e.calls(), (calls{tokens: 2, discovery: 1, validate: 1, success: 1}); got != want {
		t.Errorf("Intune calls = %+v, want %+v", got, want)
	}
	csrB64 := base64.StdEncoding.EncodeToString(m.Content)
	if v := e.fake.Validates(); len(v) != 1 || v[0].TransactionID != m.TransactionID || v[0].CertificateRequest != csrB64 {
		t.Errorf("validateRequest = %+v, want transaction %q and the CSR as sent", v, m.TransactionID)
	}
	thumb := sha1.Sum(cert.Raw)
	s := e.fake.Successes()
	if len(s) != 1 {
		t.Fatalf("successNotifications = %d, want 1", len(s))
	}
	if s[0].CertificateThumbprint != strings.ToUpper(hex.EncodeToString(thumb[:])) || s[0].CertificateSerialNumber != serialOf(cert) ||
		s[0].TransactionID != m.TransactionID || s[0].CertificateRequest != csrB64 || s[0].IssuingCertificateAuthority != cert.Issuer.String() {
		t.Errorf("successNotification = %+v, want thumbprint, serial %s, issuer %s of the issued certificate", s[0], serialOf(cert), cert.Issuer)
	}
	tx, err := e.f.store.GetTransaction(t.Context(), e.integ.ID, m.TransactionID)
	if err != nil || tx.State != store.TxSuccess || tx.Serial != serialOf(cert) {
		t.Errorf("GetTransaction(%q) = %+v, %v, want SUCCESS with serial %s", m.TransactionID, tx, err, serialOf(cert))
	}

	// scepclient resends identical bytes; a new message for the same
	// transaction and key is a retry too. Neither reaches Intune.
	before := e.calls()
	wantSuccess(t, m, e.send(t, m, marshal(t, m), ""))
	again := e.message(t, withTxID(m.TransactionID))
	if got := wantSuccess(t, again, e.do(t, again, "GET")); !bytes.Equal(got.Raw, cert.Raw) {
		t.Errorf("retry = serial %s, want the same certificate %s", serialOf(got), serialOf(cert))
	}
	if got := e.calls(); got != before {
		t.Errorf("Intune calls after two retries = %+v, want unchanged %+v", got, before)
	}
	if n := len(e.certs(t)); n != 1 {
		t.Errorf("certificates = %d, want 1", n)
	}
}

// intuneTestTimeout bounds each Intune call in the tests that script a
// Blocking reply: long enough that a call the fake answers at once never
// times out on a loaded machine (300 ms did, under make test), short enough
// to keep those tests quick.
const intuneTestTimeout = 2 * time.Second

// TestIntuneRefusals is §5 item 15: each refusal code, the unknown
// BadTenantIdInChallenge included, a 500 and a timeout give FAILURE
// badRequest, store nothing and send no failureNotification; a failure
// that is not a refusal makes the next request rediscover.
func TestIntuneRefusals(t *testing.T) {
	t.Parallel()
	type tc struct {
		name           string
		reply          intunefake.Reply
		wantRediscover bool
	}
	tests := []tc{
		{"BadTenantIdInChallenge", intunefake.BadTenant(), false},
		{"HTTP 500", intunefake.Status(http.StatusInternalServerError), true},
		{"HTTP 401", intunefake.Status(http.StatusUnauthorized), true},
		{"timeout", intunefake.Blocking(), true},
		{"unparsable 200", intunefake.Reply{Body: "Success"}, false},
	}
	for _, code := range intunefake.Codes {
		tests = append(tests, tc{code, intunefake.Refuse(code), false})
	}
	e := newIntuneEndpoint(t, intuneConfig{callTimeout: intuneTestTimeout})
	e.enroll(t) // warm: tokens and discovery cached
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := e.message(t)
			e.fake.Script(m.TransactionID, intunefake.ActionValidate, tc.reply)
			before := e.calls()
			wantFailure(t, m, e.do(t, m, ""), scep.BadRequest)
			if _, err := e.f.store.GetTransaction(t.Context(), e.integ.ID, m.TransactionID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetTransaction(%q) after a refusal = %v, want it released", m.TransactionID, err)
			}
			next, _ := e.enroll(t)
			after := e.calls()
			if got := after.discovery > before.discovery; got != tc.wantRediscover {
				t.Errorf("rediscovered = %v, want %v", got, tc.wantRediscover)
			}
			if after.failure != 0 || after.success != before.success+1 {
				t.Errorf("Intune calls %+v → %+v, want no failureNotification and one success (for %s)", before, after, next.TransactionID)
			}
		})
	}
	// Only the warm-up and each follow-up enrollment hold a certificate.
	if n := len(e.certs(t)); n != len(tests)+1 {
		t.Errorf("certificates = %d, want %d", n, len(tests)+1)
	}
	for _, c := range e.certs(t) {
		if c.Status != store.CertIssued {
			t.Errorf("certificate %s is %s, want %s", c.Serial, c.Status, store.CertIssued)
		}
	}
}

// TestIntuneUnavailableBeforeValidate: no token or no discovery means no
// certificate either.
func TestIntuneUnavailableBeforeValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		breakFake func(*intunefake.Server)
	}{
		{"token refused", func(f *intunefake.Server) {
			f.FailTokens("", intunefake.TokenFailure(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided."))
		}},
		{"discovery 403", func(f *intunefake.Server) { f.SetDiscoveryStatus(http.StatusForbidden) }},
		{"service not listed", func(f *intunefake.Server) { f.SetSCEPProvider(false) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newIntuneEndpoint(t, intuneConfig{})
			tc.breakFake(e.fake)
			m := e.message(t)
			wantFailure(t, m, e.do(t, m, ""), scep.BadRequest)
			if n := len(e.certs(t)); n != 0 {
				t.Errorf("certificates = %d, want 0", n)
			}
			if got := e.calls(); got.validate+got.success+got.failure != 0 {
				t.Errorf("Intune calls = %+v, want no ScepActions", got)
			}
		})
	}
}

// TestIntuneNotificationFailure is §5 item 16: when successNotification
// fails the client gets FAILURE, the signed certificate is revoked
// (cessationOfOperation) and never returned, and a retry starts again at
// validateRequest.
func TestIntuneNotificationFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply intunefake.Reply
	}{
		{"HTTP 500", intunefake.Status(http.StatusInternalServerError)},
		{"refused", intunefake.Refuse("Unknown")},
		{"timeout", intunefake.Blocking()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newIntuneEndpoint(t, intuneConfig{callTimeout: intuneTestTimeout})
			m := e.message(t)
			e.fake.Script(m.TransactionID, intunefake.ActionSuccess, tc.reply)
			wantFailure(t, m, e.do(t, m, ""), scep.BadRequest)

			certs := e.certs(t)
			if len(certs) != 1 {
				t.Fatalf("certificates = %d, want the one revoked", len(certs))
			}
			revoked := certs[0]
			if revoked.Status != store.CertRevoked || revoked.RevocationReason != 5 || revoked.RevokedAt.IsZero() {
				t.Errorf("certificate %s = %s reason %d, want REVOKED cessationOfOperation (5)", revoked.Serial, revoked.Status, revoked.RevocationReason)
			}
			if !strings.Contains(e.audit.String(), `"msg":"certificate.revoke"`) || !strings.Contains(e.audit.String(), "never delivered") {
				t.Errorf("audit log = %s, want certificate.revoke never delivered", e.audit.String())
			}
			if got := e.calls(); got.failure != 0 {
				t.Errorf("failureNotifications = %d, want 0 for Intune's own failure", got.failure)
			}

			// The identical request again: validated again, not the revoked
			// certificate; once Intune acknowledges, a new one is delivered.
			e.fake.Script(m.TransactionID, intunefake.ActionSuccess, intunefake.Reply{})
			cert := wantSuccess(t, m, e.send(t, m, marshal(t, m), ""))
			if serialOf(cert) == revoked.Serial {
				t.Fatalf("retry returned the revoked certificate %s", revoked.Serial)
			}
			if got := e.calls(); got.validate != 2 || got.success != 2 {
				t.Errorf("Intune calls = %+v, want validate and successNotification twice", got)
			}
		})
	}
}

// TestIntuneOwnFailure is §5 item 16's second half: when we fail after a
// successful validate, a failureNotification carries the hResult and at
// most 255 characters, and nothing is stored.
func TestIntuneOwnFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		prepareErr error
		issueErr   error
		hResult    int64
	}{
		{"signing error", nil, errors.New("ca: issue: HSM unavailable: " + strings.Repeat("détail ", 60)), 0x20000001},
		{"policy refusal", fmt.Errorf("%w: subject too long", ca.ErrPolicy), nil, 0x20000102},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newIntuneEndpoint(t, intuneConfig{})
			e.ca.prepareErr, e.ca.issueErr = tc.prepareErr, tc.issueErr
			m := e.message(t)
			wantFailure(t, m, e.do(t, m, ""), scep.BadRequest)
			fn := e.fake.Failures()
			if len(fn) != 1 {
				t.Fatalf("failureNotifications = %d, want 1", len(fn))
			}
			if fn[0].HResult != tc.hResult || fn[0].TransactionID != m.TransactionID || utf8.RuneCountInString(fn[0].ErrorDescription) > 255 || fn[0].ErrorDescription == "" {
				t.Errorf("failureNotification = %+v, want hResult %#x and a description of 1 to 255 characters", fn[0], tc.hResult)
			}
			if n := len(e.certs(t)); n != 0 {
				t.Errorf("certificates = %d, want 0", n)
			}
			if got := e.calls(); got.success != 0 {
				t.Errorf("successNotifications = %d, want 0", got.success)
			}
		})
	}
}

// TestIntuneNeverPending: a transaction another replica is working on
// (PENDING, or ISSUED awaiting Intune) gets FAILURE, for a resent PKCSReq
// and for a CertPoll: an Intune integration never answers PENDING.
func TestIntuneNeverPending(t *testing.T) {
	t.Parallel()
	for _, state := range []string{store.TxPending, store.TxIssued} {
		t.Run(state, func(t *testing.T) {
			t.Parallel()
			e := newIntuneEndpoint(t, intuneConfig{})
			m := e.message(t)
			claimInFlight(t, e, m, state, time.Now().Add(time.Minute))
			wantFailure(t, m, e.do(t, m, ""), scep.BadRequest)

			content, err := scepclient.IssuerAndSubject(e.f.ca.Intermediate(), subjectDER(t))
			if err != nil {
				t.Fatal(err)
			}
			poll := e.message(t, withType(scepclient.TypeCertPoll), withTxID(m.TransactionID), withContent(content))
			r := e.do(t, poll, "")
			if r.Status == scepclient.StatusPending {
				t.Errorf("CertPoll(%s in flight) = PENDING, want FAILURE", state)
			}
			if got := e.calls(); got.validate != 0 {
				t.Errorf("validateRequests = %d, want 0 while another holds the transaction", got.validate)
			}
		})
	}
}

// TestIntuneAbandonedTransaction: a replica that died between signing and
// acknowledgement leaves the transaction ISSUED; once its lease ran out, a
// retry revokes that never-delivered certificate and starts again.
func TestIntuneAbandonedTransaction(t *testing.T) {
	t.Parallel()
	e := newIntuneEndpoint(t, intuneConfig{})
	m := e.message(t)
	orphan := claimInFlight(t, e, m, store.TxIssued, time.Now().Add(-time.Second))
	cert := wantSuccess(t, m, e.do(t, m, ""))
	if serialOf(cert) == orphan {
		t.Fatal("retry returned the abandoned certificate")
	}
	rec, err := e.f.store.GetCertificate(t.Context(), orphan)
	if err != nil || rec.Status != store.CertRevoked || rec.RevocationReason != 5 {
		t.Errorf("abandoned certificate %s = %+v, %v, want REVOKED reason 5", orphan, rec, err)
	}
}

// claimInFlight stores m's transaction as another claimant's, in state
// (with a certificate for ISSUED), leased until leaseUntil; it returns the
// certificate's serial.
func claimInFlight(t *testing.T, e *intuneEndpoint, m *scepclient.Message, state string, leaseUntil time.Time) string {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(m.Content)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tx := &store.Transaction{
		IntegrationID: e.integ.ID, TransactionID: m.TransactionID, PublicKeyHash: sha256Sum(csr.RawSubjectPublicKeyInfo),
		ChallengeHash: sha256Sum([]byte(e.secret)), State: store.TxPending, CreatedAt: now.Add(-time.Hour),
		LeaseUntil: leaseUntil, ExpiresAt: now.Add(time.Hour), Claim: "other-replica", Confirm: true,
	}
	if _, err := e.f.store.ClaimTransaction(t.Context(), tx, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if state != store.TxIssued {
		return ""
	}
	tok, err := e.f.ca.Prepare(t.Context(), &ca.Request{CSR: csr, IntegrationID: e.integ.ID, TransactionID: m.TransactionID})
	if err != nil {
		t.Fatal(err)
	}
	_, rec, err := e.f.ca.Issue(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.f.store.GetTransaction(t.Context(), e.integ.ID, m.TransactionID)
	if err != nil || got.State != store.TxIssued {
		t.Fatalf("GetTransaction() = %+v, %v, want ISSUED", got, err)
	}
	return rec.Serial
}

// TestIntuneBudget: the whole chain is bounded by the validator's budget
// even when one call may take longer.
func TestIntuneBudget(t *testing.T) {
	t.Parallel()
	e := newIntuneEndpoint(t, intuneConfig{callTimeout: time.Minute, budget: 300 * time.Millisecond})
	m := e.message(t)
	e.fake.Script(m.TransactionID, intunefake.ActionValidate, intunefake.Blocking())
	start := time.Now()
	wantFailure(t, m, e.do(t, m, ""), scep.BadRequest)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("PKIOperation took %v, want it cut at the 300ms budget", d)
	}
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// auditBuffer collects the audit log written by the server's goroutines.
type auditBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *auditBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *auditBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
