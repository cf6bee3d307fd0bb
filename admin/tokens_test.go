package admin_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// Add moves the clock (testClock is in integrations_lifecycle_test.go).
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// boltSink stores audit events in a bbolt store, as cmd wires it.
type boltSink struct{ db *bolt.DB }

func (s boltSink) AppendEvents(ctx context.Context, events []*auditlog.Event) error {
	out := make([]*store.Event, len(events))
	for i, e := range events {
		out[i] = (*store.Event)(e)
	}
	return s.db.AppendEvents(ctx, out)
}

// eventsFixture is the admin API whose audit logger stores events in the
// fixture's bbolt store (and still writes the JSON lines to f.audit), with
// an adjustable clock.
type eventsFixture struct {
	*fixture
	clock *testClock
	stop  func()
}

func newEventsFixture(t *testing.T) *eventsFixture {
	t.Helper()
	db := openDB(t)
	clock := &testClock{t: time.Now().UTC()}
	var h *auditlog.Handler
	f := newFixtureWith(t, db, maxBody, func(cfg *admin.Config) {
		var err error
		if h, err = auditlog.New(auditlog.Config{Sink: boltSink{db}, Next: cfg.Audit.Handler()}); err != nil {
			t.Fatal(err)
		}
		cfg.Audit = slog.New(h)
		cfg.Now = clock.Now
		kek, err := ca.ParseKEK([]byte(strings.Repeat("5c", 32)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Sealer = kek
	})
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("auditlog Run() = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &eventsFixture{fixture: f, clock: clock, stop: stop}
}

// events flushes the audit batcher (later events are stored at once) and
// returns every stored event, newest first.
func (f *eventsFixture) events(t *testing.T) []*store.Event {
	t.Helper()
	f.stop()
	evs, err := f.db.ListEvents(t.Context(), store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// createToken creates an API token with the bootstrap admin token.
func (f *fixture) createToken(t *testing.T, body string) admin.CreatedToken {
	t.Helper()
	resp, b := f.do(t, http.MethodPost, "/api/v1/tokens", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/tokens %s = %d %s, want 201", body, resp.StatusCode, b)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("POST /api/v1/tokens Cache-Control = %q, want no-store", cc)
	}
	var out admin.CreatedToken
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

var tokenFormat = regexp.MustCompile(`^scepca_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$`)

// TestTokenScopes is the path: create → use → 403 on an admin
// route with a VERIFY token → 200 on the attestation nonce route → delete
// → 401.
func TestTokenScopes(t *testing.T) {
	t.Parallel()
	f := newAttestFixture(t)
	verify := f.createToken(t, `{"name":"IdP sidecar","scope":"VERIFY"}`)
	if m := tokenFormat.FindStringSubmatch(verify.Token); m == nil || m[1] != verify.ID {
		t.Fatalf("token %q, ID %q: want scepca_<id>_<43 base64url characters>", verify.Token, verify.ID)
	}
	if verify.Name != "IdP sidecar" || verify.Scope != store.ScopeVerify || verify.CreatedAt.IsZero() || !verify.ExpiresAt.IsZero() || verify.Expired {
		t.Errorf("created token = %+v, want name, VERIFY, createdAt, no expiry", verify.TokenInfo)
	}
	adminTok := f.createToken(t, `{"name":"automation","scope":"ADMIN"}`)
	bearerVerify, bearerAdmin := "Bearer "+verify.Token, "Bearer "+adminTok.Token

	for _, tc := range []struct {
		auth   string
		method string
		path   string
		body   string
		want   int
	}{
		{bearerVerify, http.MethodPost, "/api/v1/attestation/nonces", "", http.StatusOK},
		{bearerVerify, http.MethodGet, "/api/v1/device-integrations", "", http.StatusForbidden},
		{bearerVerify, http.MethodPost, "/api/v1/device-integrations", `{"name":"x","platform":"DESKTOP","challengeType":"STATIC"}`, http.StatusForbidden},
		{bearerVerify, http.MethodGet, "/api/v1/certificate-authorities", "", http.StatusForbidden},
		{bearerVerify, http.MethodGet, "/api/v1/logs", "", http.StatusForbidden},
		{bearerVerify, http.MethodGet, "/api/v1/tokens", "", http.StatusForbidden},
		{bearerVerify, http.MethodPost, "/api/v1/tokens", `{"name":"escalate","scope":"ADMIN"}`, http.StatusForbidden},
		{bearerVerify, http.MethodDelete, "/api/v1/tokens/" + adminTok.ID, "", http.StatusForbidden},
		{bearerVerify, http.MethodGet, "/api/v1/no-such-route", "", http.StatusForbidden},
		{bearerAdmin, http.MethodPost, "/api/v1/attestation/nonces", "", http.StatusOK},
		{bearerAdmin, http.MethodGet, "/api/v1/device-integrations", "", http.StatusOK},
		{bearerAdmin, http.MethodGet, "/api/v1/tokens", "", http.StatusOK},
	} {
		what := tc.method + " " + tc.path + " with " + strings.Fields(tc.auth)[1][:23]
		resp, b := f.doAuth(t, tc.method, tc.path, tc.body, tc.auth)
		if tc.want == http.StatusForbidden {
			wantProblem(t, what, resp, b, http.StatusForbidden, "scope VERIFY")
			if h := resp.Header.Get("WWW-Authenticate"); h != "" {
				t.Errorf("%s WWW-Authenticate = %q, want none on 403", what, h)
			}
			continue
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%s = %d %s, want %d", what, resp.StatusCode, b, tc.want)
		}
	}
	if list := f.listTokens(t); len(list) != 2 {
		t.Errorf("tokens after a refused create = %d, want 2", len(list))
	}

	resp, b := f.do(t, http.MethodDelete, "/api/v1/tokens/"+verify.ID, "")
	if resp.StatusCode != http.StatusNoContent || len(b) != 0 {
		t.Fatalf("DELETE /api/v1/tokens/%s = %d %q, want 204 and no body", verify.ID, resp.StatusCode, b)
	}
	resp, b = f.doAuth(t, http.MethodPost, "/api/v1/attestation/nonces", "", bearerVerify)
	wantProblem(t, "nonce with a deleted token", resp, b, http.StatusUnauthorized, "invalid bearer token")
	if h := resp.Header.Get("WWW-Authenticate"); h != `Bearer realm="scepca"` {
		t.Errorf("401 WWW-Authenticate = %q", h)
	}
	resp, b = f.do(t, http.MethodDelete, "/api/v1/tokens/"+verify.ID, "")
	wantProblem(t, "second DELETE", resp, b, http.StatusNotFound, "no token")
	resp, b = f.do(t, http.MethodDelete, "/api/v1/tokens/not-an-id", "")
	wantProblem(t, "DELETE of a malformed ID", resp, b, http.StatusNotFound, "no token")
}

func (f *fixture) listTokens(t *testing.T) []map[string]any {
	t.Helper()
	resp, b := f.do(t, http.MethodGet, "/api/v1/tokens", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/tokens = %d %s", resp.StatusCode, b)
	}
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	return list
}

// TestTokenList: the list shows what a token is, never the token or its
// hash.
func TestTokenList(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	if list := f.listTokens(t); list == nil || len(list) != 0 {
		t.Fatalf("empty token list = %v, want []", list)
	}
	expires := f.clock.Now().Add(time.Hour).Truncate(time.Second)
	c := f.createToken(t, `{"name":"ci","scope":"ADMIN","expiresAt":"`+expires.Format(time.RFC3339)+`"}`)
	resp, b := f.do(t, http.MethodGet, "/api/v1/tokens", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/tokens = %d %s", resp.StatusCode, b)
	}
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{
		"id": c.ID, "name": "ci", "scope": "ADMIN", "createdAt": c.CreatedAt.Format(time.RFC3339Nano),
		"expiresAt": expires.Format(time.RFC3339Nano), "expired": false,
	}}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("GET /api/v1/tokens mismatch (-want +got):\n%s", diff)
	}
	secret := strings.TrimPrefix(c.Token, "scepca_"+c.ID+"_")
	if strings.Contains(string(b), secret) {
		t.Errorf("token list %s contains the token", b)
	}
}

// TestTokenExpiry: an expired token answers 401 with its own detail; the
// list marks it expired.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	c := f.createToken(t, `{"name":"short","scope":"ADMIN","expiresAt":"`+f.clock.Now().Add(time.Hour).Format(time.RFC3339)+`"}`)
	auth := "Bearer " + c.Token
	if resp, b := f.doAuth(t, http.MethodGet, "/api/v1/tokens", "", auth); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/tokens with a fresh token = %d %s", resp.StatusCode, b)
	}
	f.clock.Add(time.Hour)
	resp, b := f.doAuth(t, http.MethodGet, "/api/v1/tokens", "", auth)
	wantProblem(t, "expired token", resp, b, http.StatusUnauthorized, "expired bearer token")
	if list := f.listTokens(t); len(list) != 1 || list[0]["expired"] != true {
		t.Errorf("token list = %v, want the token marked expired", list)
	}
}

// TestTokenInvalid: tokens that look right but are not answer 401, and a
// token removed from the store behind the API's back (another replica)
// stops working once the cache entry ages out.
func TestTokenInvalid(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	c := f.createToken(t, `{"name":"n","scope":"ADMIN"}`)
	other := f.createToken(t, `{"name":"m","scope":"ADMIN"}`)
	swapped := "scepca_" + c.ID + "_" + strings.TrimPrefix(other.Token, "scepca_"+other.ID+"_")
	for name, tok := range map[string]string{
		"unknown ID":        "scepca_0123456789abcdef_" + strings.TrimPrefix(c.Token, "scepca_"+c.ID+"_"),
		"another's secret":  swapped,
		"short secret":      c.Token[:len(c.Token)-1],
		"upper-case ID":     "scepca_" + strings.ToUpper(c.ID) + c.Token[len("scepca_")+16:],
		"bootstrap + token": f.token + c.Token,
	} {
		resp, b := f.doAuth(t, http.MethodGet, "/api/v1/tokens", "", "Bearer "+tok)
		wantProblem(t, name, resp, b, http.StatusUnauthorized, "invalid bearer token")
	}

	auth := "Bearer " + c.Token
	if resp, b := f.doAuth(t, http.MethodGet, "/api/v1/tokens", "", auth); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET with a valid token = %d %s", resp.StatusCode, b)
	}
	if err := f.db.DeleteToken(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	if resp, b := f.doAuth(t, http.MethodGet, "/api/v1/tokens", "", auth); resp.StatusCode != http.StatusOK {
		t.Errorf("GET within the cache TTL after a deletion elsewhere = %d %s, want 200 (documented delay)", resp.StatusCode, b)
	}
	f.clock.Add(admin.DefaultTokenCacheTTL)
	resp, b := f.doAuth(t, http.MethodGet, "/api/v1/tokens", "", auth)
	wantProblem(t, "token deleted elsewhere, after the cache TTL", resp, b, http.StatusUnauthorized, "invalid bearer token")
}

func TestTokenCreateInvalid(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	past := f.clock.Now().Add(-time.Minute).Format(time.RFC3339)
	tests := []struct {
		name, body, detail string
	}{
		{"no name", `{"scope":"ADMIN"}`, "name is required"},
		{"blank name", `{"name":"  ","scope":"ADMIN"}`, "name is required"},
		{"long name", `{"name":"` + strings.Repeat("n", 101) + `","scope":"ADMIN"}`, "at most 100"},
		{"control character", `{"name":"a\nb","scope":"ADMIN"}`, "control characters"},
		{"no scope", `{"name":"a"}`, "scope must be ADMIN or VERIFY"},
		{"lower-case scope", `{"name":"a","scope":"admin"}`, "scope must be ADMIN or VERIFY"},
		{"other scope", `{"name":"a","scope":"ROOT"}`, "scope must be ADMIN or VERIFY"},
		{"past expiry", `{"name":"a","scope":"ADMIN","expiresAt":"` + past + `"}`, "expiresAt must be in the future"},
		{"expiry not a time", `{"name":"a","scope":"ADMIN","expiresAt":"tomorrow"}`, "invalid JSON body"},
		{"unknown field", `{"name":"a","scope":"ADMIN","token":"mine"}`, "unknown field"},
		{"not JSON", `scope=ADMIN`, "invalid JSON body"},
	}
	for _, tc := range tests {
		resp, b := f.do(t, http.MethodPost, "/api/v1/tokens", tc.body)
		wantProblem(t, "POST /api/v1/tokens "+tc.name, resp, b, http.StatusBadRequest, tc.detail)
	}
	if list := f.listTokens(t); len(list) != 0 {
		t.Errorf("tokens after invalid requests = %v, want none", list)
	}
}

// TestActors: events name the bootstrap token as admin-token and an API
// token as token:<id>; token create and delete are events without the
// token.
func TestActors(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	c := f.createToken(t, `{"name":"automation","scope":"ADMIN"}`)
	resp, b := f.doAuth(t, http.MethodPost, "/api/v1/device-integrations", `{"name":"Laptops","platform":"DESKTOP","challengeType":"STATIC"}`, "Bearer "+c.Token)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create integration with an API token = %d %s", resp.StatusCode, b)
	}
	var in admin.Integration
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	if resp, b := f.doAuth(t, http.MethodDelete, "/api/v1/tokens/"+c.ID, "", "Bearer "+c.Token); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a token deleting itself = %d %s, want 204", resp.StatusCode, b)
	}
	type ev struct{ Type, Actor, Target, Outcome string }
	var got []ev
	for _, e := range f.events(t) {
		got = append(got, ev{e.Type, e.Actor, e.Target, e.Outcome})
	}
	self := "token:" + c.ID
	want := []ev{
		{"token.delete", self, c.ID, store.OutcomeSuccess},
		{"device.integration.create", self, in.ID, store.OutcomeSuccess},
		{"token.create", admin.ActorAdminToken, c.ID, store.OutcomeSuccess},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(f.reqlog.String(), `"actor":"`+self+`"`) {
		t.Errorf("request log = %s, want the actor on the request event", f.reqlog.String())
	}
}

// TestNoSecretInEvents: no secret shown at integration create or reset, or
// at token create, reaches a stored event or the audit log lines.
func TestNoSecretInEvents(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t)
	secrets := map[string]string{"admin token": f.token}
	add := func(what, s string) {
		if s != "" {
			secrets[what] = s
		}
	}
	for _, body := range []string{
		`{"name":"Laptops","platform":"DESKTOP","challengeType":"STATIC"}`,
		`{"name":"Fleet","platform":"DESKTOP","challengeType":"DYNAMIC"}`,
		`{"name":"Phones","platform":"IOS"}`,
		`{"name":"Pixels","platform":"ANDROID","managementHint":"Supplied-Hint#2024"}`,
	} {
		in := f.create(t, body)
		add(in.Platform+in.ChallengeType+" secretKey", in.SecretKey)
		add(in.ChallengeType+" password", in.Password)
		resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations/"+in.ID+"/lifecycle/reset-secret", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("reset-secret %s = %d %s", in.ID, resp.StatusCode, b)
		}
		var reset admin.Integration
		if err := json.Unmarshal(b, &reset); err != nil {
			t.Fatal(err)
		}
		add(in.Platform+in.ChallengeType+" reset secretKey", reset.SecretKey)
		add(in.ChallengeType+" reset password", reset.Password)
	}
	tok := f.createToken(t, `{"name":"n","scope":"VERIFY"}`)
	add("API token", tok.Token)
	add("API token secret", strings.TrimPrefix(tok.Token, "scepca_"+tok.ID+"_"))
	if len(secrets) != 11 {
		t.Fatalf("collected %d secrets, want 11: %v", len(secrets), secrets)
	}

	events := f.events(t)
	types := map[string]int{}
	for _, e := range events {
		types[e.Type]++
	}
	if want := map[string]int{"device.integration.create": 4, "device.integration.reset_secret": 4, "token.create": 1}; !cmp.Equal(types, want) {
		t.Errorf("event types = %v, want %v", types, want)
	}
	raw, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("stored events %s contain the %s", raw, what)
		}
		if strings.Contains(f.audit.String(), s) {
			t.Errorf("audit log lines contain the %s", what)
		}
	}
}
