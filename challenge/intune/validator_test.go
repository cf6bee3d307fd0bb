package intune

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/challenge/intune/intunefake"
	"github.com/scepca/scepca/internal/reqlog"
)

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestValidateSuccess: one validateRequest carries every header and field
// of PROTOCOLS.md §3.5, after both tokens (the Intune one with its double
// slash) and one discovery.
func TestValidateSuccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fake.Accept("intune-challenge-1")
	req := f.request(t, "7R0un8ahJvRTpI5KVL7+B9TzxvI=", "intune-challenge-1")
	ev := &reqlog.Event{}
	if err := f.v.Validate(reqlog.WithEvent(t.Context(), ev), req); err != nil {
		t.Fatalf("Validate(%q) = %v, want nil", req.TransactionID, err)
	}
	if got, want := f.counts(), (counts{graphTokens: 1, intuneTokens: 1, discovery: 1, validate: 1}); got != want {
		t.Errorf("after Validate, fake counted %+v, want %+v", got, want)
	}
	want := []intunefake.ValidateRequest{{
		TransactionID:      req.TransactionID,
		CertificateRequest: base64.StdEncoding.EncodeToString(req.CSR.Raw),
		CallerInfo:         "scepca/test",
	}}
	if d := cmp.Diff(want, f.fake.Validates()); d != "" {
		t.Errorf("validateRequest bodies (-want +got):\n%s", d)
	}
	var action *intunefake.Recorded
	ids := map[string]bool{}
	for _, r := range f.fake.Requests() {
		if id := r.Header.Get("client-request-id"); id != "" {
			if !guidRE.MatchString(id) || ids[id] {
				t.Errorf("%s %s: client-request-id %q, want a fresh GUID per call", r.Method, r.Path, id)
			}
			ids[id] = true
		}
		if strings.HasSuffix(r.Path, "/ScepActions/validateRequest") {
			action = &r
		}
	}
	if action == nil {
		t.Fatal("no validateRequest recorded")
	}
	for h, want := range map[string]string{
		"api-version":  "2018-02-20",
		"Content-Type": "application/json; charset=utf-8",
		"UserAgent":    "scepca/test",
		"User-Agent":   "scepca/test",
	} {
		if got := action.Header.Get(h); got != want {
			t.Errorf("validateRequest header %s = %q, want %q", h, got, want)
		}
	}
	if got := action.Header.Get("Authorization"); !strings.HasPrefix(got, "Bearer ey") {
		t.Errorf("validateRequest Authorization = %.12q…, want a Bearer JWT", got)
	}
	if got := fmt.Sprint(ev.Attrs()); !strings.Contains(got, reqlog.KeyIntuneValidate) || !strings.Contains(got, "Success") {
		t.Errorf("wide event = %s, want %s with code Success", got, reqlog.KeyIntuneValidate)
	}
}

// TestValidateRefusals: every code but Success, unknown ones included, is
// a refusal (challenge.ErrInvalid), also with HTTP 200 and @odata.context;
// a refusal is an answer, so the service URI stays cached.
func TestValidateRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reply intunefake.Reply
		code  string
	}{
		{"BadTenantIdInChallenge with @odata.context", intunefake.BadTenant(), "BadTenantIdInChallenge"},
		{"unknown code", intunefake.Refuse("SomethingIntuneAddsNextYear"), "SomethingIntuneAddsNextYear"},
		{"lower-case success is not Success", intunefake.Refuse("success"), "success"},
		{"not scripted: unknown challenge", intunefake.Reply{}, intunefake.CodeDeserialization},
	}
	for _, code := range intunefake.Codes {
		tests = append(tests, struct {
			name  string
			reply intunefake.Reply
			code  string
		}{code, intunefake.Refuse(code), code})
	}
	f := newFixture(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx := fmt.Sprintf("refused-%d", i)
			if tc.reply != (intunefake.Reply{}) {
				f.fake.Script(tx, intunefake.ActionValidate, tc.reply)
			}
			err := f.v.Validate(t.Context(), f.request(t, tx, "challenge-"+tx))
			if !errors.Is(err, challenge.ErrInvalid) || !errors.Is(err, ErrRefused) || errors.Is(err, challenge.ErrUnavailable) {
				t.Fatalf("Validate(%q) = %v, want %v", tx, err, ErrRefused)
			}
			if e, ok := errors.AsType[*Error](err); !ok || e.Code != tc.code || e.Status != http.StatusOK {
				t.Errorf("Validate(%q) = %#v, want code %q with HTTP 200", tx, err, tc.code)
			}
		})
	}
	if got := f.counts(); got.discovery != 1 || got.intuneTokens != 1 || got.success+got.failure != 0 {
		t.Errorf("after %d refusals fake counted %+v, want 1 discovery, 1 Intune token, no notification", len(tests), got)
	}
}

// TestValidateUnavailable: a non-2xx, a body without a code, a timeout or
// a transport error is challenge.ErrUnavailable (never Success); each
// clears the discovered URI, and a 401 or 403 also drops the Intune token.
func TestValidateUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		reply          intunefake.Reply
		wantRediscover bool
		wantNewToken   bool
		wantCause      error
	}{
		{"HTTP 500", intunefake.Status(http.StatusInternalServerError), true, false, nil},
		{"HTTP 503", intunefake.Status(http.StatusServiceUnavailable), true, false, nil},
		{"HTTP 401", intunefake.Status(http.StatusUnauthorized), true, true, nil},
		{"HTTP 403", intunefake.Status(http.StatusForbidden), true, true, nil},
		{"HTTP 404", intunefake.Status(http.StatusNotFound), true, false, nil},
		{"HTTP 302", intunefake.Reply{Status: http.StatusFound, Body: `{}`}, true, false, nil},
		{"200 without code", intunefake.Reply{Body: `{"errorDescription":""}`}, false, false, nil},
		{"200 with empty code", intunefake.Reply{Body: `{"code":""}`}, false, false, nil},
		{"200 with numeric code", intunefake.Reply{Body: `{"code":0}`}, false, false, nil},
		{"200 not JSON", intunefake.Reply{Body: `<html>Success</html>`}, false, false, nil},
		{"timeout", intunefake.Blocking(), true, false, context.DeadlineExceeded},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, withCallTimeout(200*time.Millisecond))
			f.fake.Accept("ok")
			if err := f.v.Validate(t.Context(), f.request(t, "warm-up", "ok")); err != nil {
				t.Fatalf("Validate(warm-up) = %v, want nil", err)
			}
			tx := fmt.Sprintf("unavailable-%d", i)
			f.fake.Script(tx, intunefake.ActionValidate, tc.reply)
			err := f.v.Validate(t.Context(), f.request(t, tx, "ok"))
			if !errors.Is(err, challenge.ErrUnavailable) || errors.Is(err, challenge.ErrInvalid) {
				t.Fatalf("Validate(%q) = %v, want %v", tx, err, challenge.ErrUnavailable)
			}
			if tc.wantCause != nil && !errors.Is(err, tc.wantCause) {
				t.Errorf("Validate(%q) = %v, want it to wrap %v", tx, err, tc.wantCause)
			}
			before := f.counts()
			if err := f.v.Validate(t.Context(), f.request(t, "after-"+tx, "ok")); err != nil {
				t.Fatalf("Validate(after %s) = %v, want nil", tc.name, err)
			}
			after := f.counts()
			if got := after.discovery > before.discovery; got != tc.wantRediscover {
				t.Errorf("rediscovered after %s = %v, want %v (discovery %d → %d)", tc.name, got, tc.wantRediscover, before.discovery, after.discovery)
			}
			if got := after.intuneTokens > before.intuneTokens; got != tc.wantNewToken {
				t.Errorf("new Intune token after %s = %v, want %v (%d → %d)", tc.name, got, tc.wantNewToken, before.intuneTokens, after.intuneTokens)
			}
		})
	}
}

// TestTransportError: a service that is gone is unavailable, not a panic
// or a refusal.
func TestTransportError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fake.Close()
	err := f.v.Validate(t.Context(), f.request(t, "tx", "ok"))
	if !errors.Is(err, challenge.ErrUnavailable) {
		t.Fatalf("Validate(closed fake) = %v, want %v", err, challenge.ErrUnavailable)
	}
}

// TestTokenCache: tokens are reused until five minutes before they expire,
// the service URI for 24 hours.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fake.Accept("ok")
	validate := func(tx string) {
		t.Helper()
		if err := f.v.Validate(t.Context(), f.request(t, tx, "ok")); err != nil {
			t.Fatalf("Validate(%q) = %v, want nil", tx, err)
		}
	}
	validate("1")
	validate("2")
	if got := f.counts(); got.intuneTokens != 1 || got.graphTokens != 1 || got.discovery != 1 {
		t.Fatalf("after two validations fake counted %+v, want one token per scope and one discovery", got)
	}
	f.clock.Advance(3599*time.Second - tokenMargin - time.Second)
	validate("3")
	if got := f.counts(); got.intuneTokens != 1 {
		t.Errorf("just before the margin, Intune tokens = %d, want 1 (reused)", got.intuneTokens)
	}
	f.clock.Advance(2 * time.Second)
	validate("4")
	if got := f.counts(); got.intuneTokens != 2 || got.discovery != 1 {
		t.Errorf("inside the margin, fake counted %+v, want a second Intune token and still one discovery", got)
	}
	f.clock.Advance(discoveryTTL)
	validate("5")
	if got := f.counts(); got.discovery != 2 || got.graphTokens != 2 {
		t.Errorf("after 24 h, fake counted %+v, want a second discovery with a second Graph token", got)
	}
}

// TestTokenDroppedAfter401: a token the service no longer accepts is
// dropped at the first 401 (that request fails closed), and the next
// request gets a new one.
func TestTokenDroppedAfter401(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fake.Accept("ok")
	if err := f.v.Validate(t.Context(), f.request(t, "1", "ok")); err != nil {
		t.Fatalf("Validate(1) = %v, want nil", err)
	}
	f.fake.RevokeTokens()
	err := f.v.Validate(t.Context(), f.request(t, "2", "ok"))
	if e, ok := errors.AsType[*Error](err); !ok || e.Status != http.StatusUnauthorized || !errors.Is(err, challenge.ErrUnavailable) {
		t.Fatalf("Validate(2) with a revoked token = %v, want HTTP 401, %v", err, challenge.ErrUnavailable)
	}
	// Discovery was cleared too, and its Graph token is also revoked: the
	// next request drops that at discovery's 401, the one after recovers.
	if err := f.v.Validate(t.Context(), f.request(t, "3", "ok")); !errors.Is(err, challenge.ErrUnavailable) {
		t.Fatalf("Validate(3) with a revoked Graph token = %v, want %v", err, challenge.ErrUnavailable)
	}
	if err := f.v.Validate(t.Context(), f.request(t, "4", "ok")); err != nil {
		t.Fatalf("Validate(4) = %v, want nil with fresh tokens", err)
	}
	if got := f.counts(); got.intuneTokens != 2 || got.graphTokens != 2 {
		t.Errorf("fake counted %+v, want two tokens per scope", got)
	}
}

// TestTokenErrors: Entra ID's refusals surface their OAuth error and AADSTS
// code, never the secret, and are not cached.
func TestTokenErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.integ = f.integration(t, "int-wrong-secret", "not-the-secret")
	err := f.v.Validate(t.Context(), f.request(t, "tx", "ok"))
	e, ok := errors.AsType[*Error](err)
	if !ok || !errors.Is(err, ErrToken) || e.AADSTS != "7000215" || e.Code != "invalid_client" || e.Status != http.StatusUnauthorized {
		t.Fatalf("Validate(wrong secret) = %v, want invalid_client AADSTS7000215 wrapping %v", err, ErrToken)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("error text %q holds the secret", err)
	}
	if strings.Contains(e.Description, "Trace ID") {
		t.Errorf("Description %q keeps the trace lines", e.Description)
	}
	if err := f.v.Validate(t.Context(), f.request(t, "tx2", "ok")); !errors.Is(err, ErrToken) {
		t.Errorf("Validate(wrong secret, again) = %v, want %v", err, ErrToken)
	}
	if got := f.counts().graphTokens; got != 2 {
		t.Errorf("Graph token requests = %d, want 2: a refusal is not cached", got)
	}

	f.fake.FailTokens("", intunefake.TokenFailure(http.StatusBadRequest, "invalid_grant", 7000222, "The provided client secret keys for app are expired."))
	f.integ = f.integration(t, "int-expired", f.fake.ClientSecret())
	err = f.v.Validate(t.Context(), f.request(t, "tx3", "ok"))
	if e, ok := errors.AsType[*Error](err); !ok || e.AADSTS != "7000222" {
		t.Errorf("Validate(expired secret) = %v, want AADSTS7000222", err)
	}
}

// TestDiscoveryFailures: a 403 or a list without the SCEP service fails
// closed with a named error, and nothing failed is cached.
func TestDiscoveryFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fake.Accept("ok")
	f.fake.SetDiscoveryStatus(http.StatusForbidden)
	if err := f.v.Validate(t.Context(), f.request(t, "1", "ok")); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Validate(discovery 403) = %v, want %v", err, ErrForbidden)
	}
	f.fake.SetDiscoveryStatus(0)
	f.fake.SetSCEPProvider(false)
	if err := f.v.Validate(t.Context(), f.request(t, "2", "ok")); !errors.Is(err, ErrServiceNotFound) || !errors.Is(err, challenge.ErrUnavailable) {
		t.Fatalf("Validate(no SCEP provider) = %v, want %v", err, ErrServiceNotFound)
	}
	f.fake.SetDiscoveryStatus(http.StatusInternalServerError)
	if err := f.v.Validate(t.Context(), f.request(t, "3", "ok")); !errors.Is(err, challenge.ErrUnavailable) {
		t.Fatalf("Validate(discovery 500) = %v, want %v", err, challenge.ErrUnavailable)
	}
	f.fake.SetDiscoveryStatus(0)
	f.fake.SetSCEPProvider(true)
	if err := f.v.Validate(t.Context(), f.request(t, "4", "ok")); err != nil {
		t.Fatalf("Validate(fixed) = %v, want nil", err)
	}
	// The 403 dropped the Graph token (one more fetch); the 500 did not.
	if got := f.counts(); got.discovery != 4 || got.validate != 1 || got.graphTokens != 2 {
		t.Errorf("fake counted %+v, want 4 discoveries, 2 Graph tokens and 1 validate", got)
	}
}

// TestBudget: a slow Intune is cut by the caller's deadline as well as by
// the per-call timeout.
func TestBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // per-call timeout 10 s
	f.fake.Accept("ok")
	f.fake.Script("slow", intunefake.ActionValidate, intunefake.Blocking())
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := f.v.Validate(ctx, f.request(t, "slow", "ok"))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, challenge.ErrUnavailable) {
		t.Fatalf("Validate(blocking, 100ms budget) = %v, want %v and %v", err, context.DeadlineExceeded, challenge.ErrUnavailable)
	}
	if f.v.Budget() != DefaultBudget {
		t.Errorf("Budget() = %v, want %v", f.v.Budget(), DefaultBudget)
	}
}

// TestNotifySuccess: the notification names the issued certificate in the
// formats of PROTOCOLS.md §3.5.
func TestNotifySuccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fake.Accept("ok")
	req := f.request(t, "tx-success", "ok")
	if err := f.v.Validate(t.Context(), req); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	cert := issue(t, req)
	if err := f.v.NotifySuccess(t.Context(), req, cert); err != nil {
		t.Fatalf("NotifySuccess(%q) = %v, want nil", req.TransactionID, err)
	}
	thumb := sha1.Sum(cert.Raw)
	want := []intunefake.SuccessNotification{{
		TransactionID:                req.TransactionID,
		CertificateRequest:           base64.StdEncoding.EncodeToString(req.CSR.Raw),
		CertificateThumbprint:        strings.ToUpper(hex.EncodeToString(thumb[:])),
		CertificateSerialNumber:      strings.ToUpper(cert.SerialNumber.Text(16)),
		CertificateExpirationDateUtc: cert.NotAfter.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		IssuingCertificateAuthority:  cert.Issuer.String(),
		CallerInfo:                   "scepca/test",
		CAConfiguration:              cert.Issuer.String(),
		CertificateAuthority:         cert.Issuer.String(),
	}}
	if d := cmp.Diff(want, f.fake.Successes()); d != "" {
		t.Errorf("successNotification bodies (-want +got):\n%s", d)
	}

	// A refused or failed notification is an error: the caller must not
	// hand the certificate out.
	for _, reply := range []intunefake.Reply{intunefake.Refuse("Unknown"), intunefake.Status(http.StatusInternalServerError)} {
		req := f.request(t, "tx-notify-"+reply.Code, "ok")
		if err := f.v.Validate(t.Context(), req); err != nil {
			t.Fatalf("Validate() = %v", err)
		}
		f.fake.Script(req.TransactionID, intunefake.ActionSuccess, reply)
		if err := f.v.NotifySuccess(t.Context(), req, issue(t, req)); err == nil {
			t.Errorf("NotifySuccess(%+v) = nil, want an error", reply)
		}
	}
}

// TestNotifyFailure: the description is cut to 255 characters on a rune
// boundary, hResult passes through, and a canceled request context does
// not stop this best-effort call.
func TestNotifyFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	req := f.request(t, "tx-failure", "ok")
	long := strings.Repeat("é", 250) + "🙂🙂🙂" + strings.Repeat("x", 100)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.v.NotifyFailure(ctx, req, HResultFailInfoBase+2, long); err != nil {
		t.Fatalf("NotifyFailure(canceled context) = %v, want nil", err)
	}
	got := f.fake.Failures()
	if len(got) != 1 {
		t.Fatalf("failureNotifications = %d, want 1", len(got))
	}
	if want := strings.Repeat("é", 250) + "🙂🙂"; got[0].ErrorDescription != want {
		t.Errorf("errorDescription = %q (%d bytes), want %q", got[0].ErrorDescription, len(got[0].ErrorDescription), want)
	}
	if got[0].HResult != 0x20000102 || got[0].TransactionID != req.TransactionID {
		t.Errorf("failureNotification = %+v, want hResult 0x20000102 for %q", got[0], req.TransactionID)
	}
}

func TestTruncateDescription(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"short", "short", "short"},
		{"exactly 255", strings.Repeat("a", 255), strings.Repeat("a", 255)},
		{"256", strings.Repeat("a", 256), strings.Repeat("a", 255)},
		{"two-byte runes", strings.Repeat("ü", 300), strings.Repeat("ü", 255)},
		{"astral rune counts two", strings.Repeat("a", 254) + "🙂", strings.Repeat("a", 254)},
		{"astral fits", strings.Repeat("a", 253) + "🙂", strings.Repeat("a", 253) + "🙂"},
	} {
		if got := truncateDescription(tc.in); got != tc.want {
			t.Errorf("truncateDescription(%s) = %d bytes, want %d", tc.name, len(got), len(tc.want))
		}
	}
}

// TestClientReusedAndRebuilt: requests share one client (one token); a
// change of the integration's settings (a rotated secret) builds a new one.
func TestClientReusedAndRebuilt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fake.Accept("ok")
	for i := range 3 {
		req := f.request(t, fmt.Sprint(i), "ok")
		copied := *f.integ // each request reads its own copy from the store
		req.Integration = &copied
		if err := f.v.Validate(t.Context(), req); err != nil {
			t.Fatalf("Validate(%d) = %v", i, err)
		}
	}
	if got := f.counts(); got.intuneTokens != 1 || got.discovery != 1 {
		t.Errorf("fake counted %+v after three requests, want one client's single token and discovery", got)
	}
	f.integ = f.integration(t, f.integ.ID, f.fake.ClientSecret()) // re-sealed: new ciphertext
	if err := f.v.Validate(t.Context(), f.request(t, "rotated", "ok")); err != nil {
		t.Fatalf("Validate(rotated) = %v", err)
	}
	if got := f.counts(); got.intuneTokens != 2 || got.discovery != 2 {
		t.Errorf("fake counted %+v after a settings change, want a new client", got)
	}
}

// TestConcurrentValidate: concurrent first requests share one token fetch
// per scope and one discovery.
func TestConcurrentValidate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fake.Accept("ok")
	const n = 20
	reqs := make([]challenge.Request, n)
	for i := range reqs {
		reqs[i] = f.request(t, fmt.Sprint("c", i), "ok")
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = f.v.Validate(t.Context(), reqs[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Validate(c%d) = %v", i, err)
		}
	}
	if got, want := f.counts(), (counts{graphTokens: 1, intuneTokens: 1, discovery: 1, validate: n}); got != want {
		t.Errorf("fake counted %+v, want %+v", got, want)
	}
}

// TestLocalRefusals: what Intune could only refuse is refused without a call.
func TestLocalRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ok := f.request(t, "tx", "pw")
	tests := []struct {
		name string
		edit func(*challenge.Request)
		want error
	}{
		{"no password", func(r *challenge.Request) { r.Password = "" }, challenge.ErrInvalid},
		{"no transactionID", func(r *challenge.Request) { r.TransactionID = "" }, challenge.ErrInvalid},
		{"no CSR", func(r *challenge.Request) { r.CSR = nil }, challenge.ErrInvalid},
		{"no integration", func(r *challenge.Request) { r.Integration = nil }, ErrNotConfigured},
		{"not an Intune integration", func(r *challenge.Request) {
			in := *f.integ
			in.ID, in.ChallengeType = "static", "STATIC"
			r.Integration = &in
		}, ErrNotConfigured},
		{"secret sealed for another integration", func(r *challenge.Request) {
			in := *f.integ
			in.ID = "other"
			r.Integration = &in
		}, ErrNotConfigured},
		{"no secret", func(r *challenge.Request) {
			in := *f.integ
			in.ID, in.IntuneSecretCiphertext = "no-secret", nil
			r.Integration = &in
		}, ErrNotConfigured},
		{"bad tenant", func(r *challenge.Request) {
			in := *f.integ
			in.ID, in.IntuneTenant = "bad-tenant", "contoso.com"
			r.Integration = &in
		}, ErrNotConfigured},
		{"plain http off loopback", func(r *challenge.Request) {
			in := *f.integ
			in.ID, in.IntuneGraphURL = "http-graph", "http://graph.example.com"
			r.Integration = &in
		}, ErrNotConfigured},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := ok
			tc.edit(&req)
			if err := f.v.Validate(t.Context(), req); !errors.Is(err, tc.want) {
				t.Errorf("Validate(%s) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
	t.Cleanup(func() {
		if got := f.counts(); got != (counts{}) {
			t.Errorf("fake counted %+v, want no call at all", got)
		}
	})
}

// TestNoRedirects: a redirect from the token endpoint is not followed, so
// the secret goes nowhere else.
func TestNoRedirects(t *testing.T) {
	t.Parallel()
	var hits sync.Map
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Store("target", true)
	}))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	f := newFixture(t)
	f.integ.IntuneAuthorityURL = redirector.URL
	err := f.v.Validate(t.Context(), f.request(t, "tx", "ok"))
	if e, ok := errors.AsType[*Error](err); !ok || e.Status != http.StatusTemporaryRedirect {
		t.Errorf("Validate(redirecting authority) = %v, want HTTP 307 not followed", err)
	}
	if _, hit := hits.Load("target"); hit {
		t.Error("the redirect target was called")
	}
}

// TestSecretsRedacted: the client secret and tokens print as REDACTED in
// every form, and a whole exchange logged at debug level shows neither.
func TestSecretsRedacted(t *testing.T) {
	t.Parallel()
	secret := ClientSecret("s3cr3t~value")
	tok := token("eyJhbGciOi.payload.signature")
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("secrets", "secret", secret, "token", tok)
	log.Info(fmt.Sprintf("%v %s %+v %#v %v %#v", secret, secret, secret, secret, tok, tok))
	if out := buf.String(); strings.Contains(out, "s3cr3t") || strings.Contains(out, "payload") || strings.Count(out, "REDACTED") != 8 {
		t.Errorf("log = %s, want eight REDACTED and no secret", out)
	}
	if b, err := json.Marshal(struct{ S ClientSecret }{secret}); err != nil || string(b) != `{"S":"REDACTED"}` {
		t.Errorf("json.Marshal(ClientSecret) = %s, %v, want REDACTED", b, err)
	}
	var decoded struct{ S ClientSecret }
	if err := json.Unmarshal([]byte(`{"S":"s3cr3t~value"}`), &decoded); err != nil || decoded.S.Reveal() != "s3cr3t~value" {
		t.Errorf("json.Unmarshal(ClientSecret) = %v, %v, want the secret", decoded.S.Reveal() == "s3cr3t~value", err)
	}

	f := newFixture(t)
	f.fake.Accept("ok")
	req := f.request(t, "tx", "ok")
	if err := f.v.Validate(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := f.v.NotifySuccess(t.Context(), req, issue(t, req)); err != nil {
		t.Fatal(err)
	}
	_ = f.v.NotifyFailure(t.Context(), req, HResultInternal, "x")
	f.fake.RevokeTokens()
	_ = f.v.Validate(t.Context(), req)
	out := f.log.String()
	if !strings.Contains(out, "intune token fetched") {
		t.Fatalf("debug log = %s, want token lines", out)
	}
	for _, r := range f.fake.Requests() {
		if a := r.Header.Get("Authorization"); a != "" && strings.Contains(out, strings.TrimPrefix(a, "Bearer ")) {
			t.Errorf("debug log holds a bearer token")
		}
	}
	if strings.Contains(out, f.fake.ClientSecret()) {
		t.Errorf("debug log holds the client secret")
	}
}
