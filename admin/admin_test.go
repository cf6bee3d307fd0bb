package admin_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/internal/syncbuf"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

const (
	// publicURL has a trailing slash on purpose: URLs built from it must not
	// carry a double slash.
	publicURL = "https://scep.example.com/"
	wantBase  = "https://scep.example.com"
	// maxBody is the body cap the fixture puts in front of the API, as cmd
	// does with reqlog.LimitBody.
	maxBody = 4 << 10
)

// syncBuffer collects output written by concurrent goroutines.
type syncBuffer = syncbuf.Buffer

// fixture is the admin API over a real bbolt store, served by httptest the
// way cmd wires it: request event → body limit → mux.
type fixture struct {
	srv    *httptest.Server
	db     *bolt.DB
	token  string
	audit  *syncBuffer // the audit logger's output
	reqlog *syncBuffer // the request (wide event) log
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, openDB(t), maxBody, nil)
}

// openDB opens a fresh bbolt store, closed at cleanup.
func openDB(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatalf("bolt.Open() = %v, want nil", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newFixtureWith serves the admin API over db behind a body cap of limit
// bytes; configure, when set, adds to the configuration (a Sealer, the
// Intune client, the verifier).
func newFixtureWith(t *testing.T, db *bolt.DB, limit int64, configure func(*admin.Config)) *fixture {
	t.Helper()
	f := &fixture{db: db, token: randomString(t), audit: &syncBuffer{}, reqlog: &syncBuffer{}}
	cfg := admin.Config{
		Store:       db,
		PublicURL:   publicURL,
		TokenHashes: [][]byte{admin.TokenHash(admin.Token(f.token))},
		Audit:       slog.New(slog.NewJSONHandler(f.audit, nil)),
	}
	if configure != nil {
		configure(&cfg)
	}
	api, err := admin.New(cfg)
	if err != nil {
		t.Fatalf("admin.New() = %v, want nil", err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	log := slog.New(slog.NewJSONHandler(f.reqlog, nil))
	f.srv = httptest.NewServer(reqlog.Middleware(log, nil)(reqlog.LimitBody(limit)(mux)))
	t.Cleanup(f.srv.Close)
	return f
}

// withCA initialises a CA hierarchy in the fixture's store.
func (f *fixture) withCA(t *testing.T) *ca.Authority {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	kek, err := ca.ParseKEK([]byte(base64.StdEncoding.EncodeToString(raw)))
	if err != nil {
		t.Fatalf("ca.ParseKEK(32 random bytes) = %v, want nil", err)
	}
	a, err := ca.Init(t.Context(), f.db, kek, ca.Config{Org: "Test"})
	if err != nil {
		t.Fatalf("ca.Init() = %v, want nil", err)
	}
	return a
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// do sends a request with the fixture's token and returns the response with
// its body read and closed.
func (f *fixture) do(t *testing.T, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	return f.doAuth(t, method, path, body, "Bearer "+f.token)
}

func (f *fixture) doAuth(t *testing.T, method, path, body, authorization string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s = %v, want a response", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// create posts body and returns the created integration.
func (f *fixture) create(t *testing.T, body string) *admin.Integration {
	t.Helper()
	resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/device-integrations %s = %d %s, want %d", body, resp.StatusCode, b, http.StatusCreated)
	}
	var out admin.Integration
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode creation response %s: %v", b, err)
	}
	return &out
}

// wantProblem checks that resp is an RFC 9457 problem document with status
// and a detail containing detail.
func wantProblem(t *testing.T, what string, resp *http.Response, body []byte, status int, detail string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s = %d %s, want %d", what, resp.StatusCode, body, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s Content-Type = %q, want %q", what, ct, "application/problem+json")
	}
	var p admin.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s body %q is not JSON: %v", what, body, err)
	}
	want := admin.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: p.Detail}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("%s problem mismatch (-want +got):\n%s", what, diff)
	}
	if p.Detail == "" || !strings.Contains(p.Detail, detail) {
		t.Errorf("%s detail = %q, want it to contain %q", what, p.Detail, detail)
	}
}

func TestCreateIntegration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want admin.Integration // ID, CreatedAt, secrets and URLs are checked apart
	}{
		{
			name: "static defaults",
			body: `{"name":"Laptops","platform":"DESKTOP","challengeType":"STATIC"}`,
			want: admin.Integration{Name: "Laptops", Platform: "DESKTOP", ChallengeType: "STATIC", Enabled: true, CAChain: "issuer", MinCipher: "des"},
		},
		{
			name: "static with options",
			body: `{"name":"  Macs  ","platform":"DESKTOP","challengeType":"STATIC","caChain":"issuerAndChain","renewal":true,"minCipher":"aes","validityDays":30}`,
			want: admin.Integration{Name: "Macs", Platform: "DESKTOP", ChallengeType: "STATIC", Enabled: true, CAChain: "issuerAndChain", Renewal: true, MinCipher: "aes", ValidityDays: 30},
		},
		{
			name: "dynamic defaults",
			body: `{"name":"Fleet","platform":"DESKTOP","challengeType":"DYNAMIC"}`,
			want: admin.Integration{
				Name: "Fleet", Platform: "DESKTOP", ChallengeType: "DYNAMIC", Enabled: true, CAChain: "issuer", MinCipher: "des",
				ChallengeTTLMinutes: int(challenge.DefaultChallengeTTL.Minutes()), MaxOutstanding: challenge.DefaultMaxOutstanding,
			},
		},
		{
			name: "dynamic with options",
			body: `{"name":"Fleet","platform":"DESKTOP","challengeType":"DYNAMIC","challengeTtlMinutes":15,"maxOutstanding":10,"ndesEncoding":true}`,
			want: admin.Integration{
				Name: "Fleet", Platform: "DESKTOP", ChallengeType: "DYNAMIC", Enabled: true, CAChain: "issuer", MinCipher: "des",
				ChallengeTTLMinutes: 15, MaxOutstanding: 10, NDESEncoding: true,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations", tc.body)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST /api/v1/device-integrations %s = %d %s, want %d", tc.body, resp.StatusCode, b, http.StatusCreated)
			}
			var got admin.Integration
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if !strings.HasPrefix(got.ID, "int") || len(got.ID) < 10 {
				t.Errorf("created id = %q, want a random id starting with %q", got.ID, "int")
			}
			if loc, want := resp.Header.Get("Location"), "/api/v1/device-integrations/"+got.ID; loc != want {
				t.Errorf("Location = %q, want %q", loc, want)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want %q (the body carries a secret)", cc, "no-store")
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want %q", ct, "application/json")
			}
			if got.CreatedAt.IsZero() {
				t.Errorf("createdAt is zero, want the creation time")
			}
			if want := wantBase + "/scep/" + got.ID; got.SCEPURL != want {
				t.Errorf("scepUrl = %q, want %q", got.SCEPURL, want)
			}
			switch got.ChallengeType {
			case store.ChallengeStatic:
				if got.SecretKey == "" || got.Password != "" {
					t.Errorf("STATIC secretKey = %q, password = %q, want a secret key and no password", got.SecretKey, got.Password)
				}
			case store.ChallengeDynamic:
				if got.Password == "" || got.SecretKey != "" {
					t.Errorf("DYNAMIC password = %q, secretKey = %q, want a password and no secret key", got.Password, got.SecretKey)
				}
				if want := wantBase + challenge.ChallengePath(got.ID); got.ChallengeURL != want {
					t.Errorf("challengeUrl = %q, want %q", got.ChallengeURL, want)
				}
				if want := "scepca-" + got.ID; got.Username != want {
					t.Errorf("username = %q, want %q", got.Username, want)
				}
			}
			tc.want.ID, tc.want.CreatedAt, tc.want.SCEPURL = got.ID, got.CreatedAt, got.SCEPURL
			tc.want.SecretKey, tc.want.Password = got.SecretKey, got.Password
			tc.want.ChallengeURL, tc.want.Username = got.ChallengeURL, got.Username
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("POST /api/v1/device-integrations %s mismatch (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

// TestSecretShownOnce: the secret key or password is in the creation
// response only, never in list or get.
func TestSecretShownOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"static", `{"name":"Laptops","platform":"DESKTOP","challengeType":"STATIC"}`},
		{"dynamic", `{"name":"Fleet","platform":"DESKTOP","challengeType":"DYNAMIC"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			created := f.create(t, tc.body)
			secret := created.SecretKey + created.Password
			if secret == "" {
				t.Fatalf("POST /api/v1/device-integrations %s returned no secret", tc.body)
			}
			for _, path := range []string{"/api/v1/device-integrations", "/api/v1/device-integrations/" + created.ID} {
				resp, b := f.do(t, http.MethodGet, path, "")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s = %d %s, want %d", path, resp.StatusCode, b, http.StatusOK)
				}
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("GET %s = %s, want no secret", path, b)
				}
				for _, key := range []string{`"secretKey"`, `"password"`} {
					if bytes.Contains(b, []byte(key)) {
						t.Errorf("GET %s = %s, want no %s field", path, b, key)
					}
				}
			}
		})
	}
}

func TestListIntegrations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	f.wantNoIntegrations(t, "on an empty store")

	var want []string
	for _, name := range []string{"One", "Two", "Three"} {
		want = append(want, f.create(t, `{"name":"`+name+`","platform":"DESKTOP","challengeType":"STATIC"}`).ID)
	}
	resp, b := f.do(t, http.MethodGet, "/api/v1/device-integrations", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/device-integrations = %d %s, want %d", resp.StatusCode, b, http.StatusOK)
	}
	var list []admin.Integration
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	var got []string
	for _, in := range list {
		got = append(got, in.ID)
		if in.SCEPURL != wantBase+"/scep/"+in.ID {
			t.Errorf("listed %s scepUrl = %q, want %q", in.ID, in.SCEPURL, wantBase+"/scep/"+in.ID)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /api/v1/device-integrations ids mismatch (-want +got):\n%s", diff)
	}
}

func TestGetIntegration(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	created := f.create(t, `{"name":"Laptops","platform":"DESKTOP","challengeType":"STATIC","renewal":true}`)

	path := "/api/v1/device-integrations/" + created.ID
	resp, b := f.do(t, http.MethodGet, path, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s, want %d", path, resp.StatusCode, b, http.StatusOK)
	}
	var got admin.Integration
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	want := *created
	want.SecretKey = ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET %s mismatch with the created integration (-want +got):\n%s", path, diff)
	}

	resp, b = f.do(t, http.MethodGet, "/api/v1/device-integrations/intnosuchid", "")
	wantProblem(t, "GET /api/v1/device-integrations/intnosuchid", resp, b, http.StatusNotFound, `no integration "intnosuchid"`)
}

func TestCreateIntegrationInvalid(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 101)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantDetail string
	}{
		{"empty body", ``, http.StatusBadRequest, "invalid JSON body"},
		{"syntax error", `{"name":`, http.StatusBadRequest, "invalid JSON body"},
		{"not an object", `[]`, http.StatusBadRequest, "invalid JSON body"},
		{"trailing data", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC"} {}`, http.StatusBadRequest, "trailing data"},
		{"unknown field", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC","colour":"red"}`, http.StatusBadRequest, `unknown field "colour"`},
		{"wrong type", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC","validityDays":"ten"}`, http.StatusBadRequest, `field "validityDays"`},
		{"name missing", `{"platform":"DESKTOP","challengeType":"STATIC"}`, http.StatusBadRequest, "name is required"},
		{"name blank", `{"name":"   ","platform":"DESKTOP","challengeType":"STATIC"}`, http.StatusBadRequest, "name is required"},
		{"name too long", `{"name":"` + long + `","platform":"DESKTOP","challengeType":"STATIC"}`, http.StatusBadRequest, "name must be at most 100 characters"},
		{"platform missing", `{"name":"a","challengeType":"STATIC"}`, http.StatusBadRequest, "platform must be DESKTOP, IOS or ANDROID"},
		{"platform unknown", `{"name":"a","platform":"LINUX","challengeType":"STATIC"}`, http.StatusBadRequest, "platform must be DESKTOP, IOS or ANDROID"},
		{"platform lower case", `{"name":"a","platform":"desktop","challengeType":"STATIC"}`, http.StatusBadRequest, "platform must be DESKTOP, IOS or ANDROID"},
		{"challengeType missing", `{"name":"a","platform":"DESKTOP"}`, http.StatusBadRequest, "challengeType must be STATIC, DYNAMIC or INTUNE"},
		{"challengeType unknown", `{"name":"a","platform":"DESKTOP","challengeType":"EMAIL"}`, http.StatusBadRequest, "challengeType must be STATIC, DYNAMIC or INTUNE"},
		{"dynamic field on static", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC","maxOutstanding":5}`, http.StatusBadRequest, "apply only to DYNAMIC integrations"},
		{"caChain unknown", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC","caChain":"full"}`, http.StatusBadRequest, "caChain must be issuer or issuerAndChain"},
		{"minCipher unknown", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC","minCipher":"rc2"}`, http.StatusBadRequest, "minCipher must be des, 3des or aes"},
		{"minCipher upper case", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC","minCipher":"AES"}`, http.StatusBadRequest, "minCipher must be des, 3des or aes"},
		{"validityDays negative", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC","validityDays":-1}`, http.StatusBadRequest, "validityDays must be between 1 and 3650"},
		{"validityDays too long", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC","validityDays":3651}`, http.StatusBadRequest, "validityDays must be between 1 and 3650"},
		{"body too large", `{"name":"` + strings.Repeat("a", maxBody) + `","platform":"DESKTOP","challengeType":"STATIC"}`, http.StatusRequestEntityTooLarge, "request body too large"},
	}
	f := newFixture(t)
	t.Run("requests", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations", tc.body)
				wantProblem(t, "POST /api/v1/device-integrations "+tc.name, resp, b, tc.wantStatus, tc.wantDetail)
			})
		}
	})
	f.wantNoIntegrations(t, "after invalid requests")
}

// wantNoIntegrations checks that the store holds no integration.
func (f *fixture) wantNoIntegrations(t *testing.T, when string) {
	t.Helper()
	resp, b := f.do(t, http.MethodGet, "/api/v1/device-integrations", "")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("GET /api/v1/device-integrations %s = %d %s, want %d []", when, resp.StatusCode, b, http.StatusOK)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/device-integrations", ""},
		{http.MethodPost, "/api/v1/device-integrations", `{"name":"a","platform":"DESKTOP","challengeType":"STATIC"}`},
		{http.MethodGet, "/api/v1/device-integrations/intx", ""},
		{http.MethodGet, "/api/v1/certificate-authorities", ""},
		{http.MethodGet, "/api/v1/certificate-authorities/x/cert", ""},
		{http.MethodGet, "/api/v1/no-such-route", ""},
	}
	tests := []struct {
		name          string
		authorization string
		wantDetail    string
	}{
		{"no header", "", "missing bearer token"},
		{"empty bearer", "Bearer ", "missing bearer token"},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+f.token)), "missing bearer token"},
		{"raw token", f.token, "missing bearer token"},
		{"wrong token", "Bearer " + randomString(t), "invalid bearer token"},
		{"token with suffix", "Bearer " + f.token + "x", "invalid bearer token"},
		{"token prefix", "Bearer " + f.token[:len(f.token)-1], "invalid bearer token"},
	}
	t.Run("refused", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				for _, rt := range routes {
					what := rt.method + " " + rt.path + " with " + tc.name
					resp, b := f.doAuth(t, rt.method, rt.path, rt.body, tc.authorization)
					wantProblem(t, what, resp, b, http.StatusUnauthorized, tc.wantDetail)
					if got, want := resp.Header.Get("WWW-Authenticate"), `Bearer realm="scepca"`; got != want {
						t.Errorf("%s WWW-Authenticate = %q, want %q", what, got, want)
					}
				}
			})
		}
	})
	f.wantNoIntegrations(t, "after unauthenticated requests")

	resp, b := f.doAuth(t, http.MethodGet, "/api/v1/device-integrations", "", "bearer "+f.token)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v1/device-integrations with %q = %d %s, want %d (the scheme is case-insensitive)", "bearer <token>", resp.StatusCode, b, http.StatusOK)
	}
}

func TestUnknownRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct{ method, path string }{
		{http.MethodGet, "/api/v1/no-such-route"},
		{http.MethodGet, "/api/v2/device-integrations"},
		{http.MethodPut, "/api/v1/certificate-authorities"},
	}
	for _, tc := range tests {
		resp, b := f.do(t, tc.method, tc.path, "")
		wantProblem(t, tc.method+" "+tc.path, resp, b, http.StatusNotFound, "no such API route")
	}
}

func TestCertificateAuthorities(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // one CA for every subtest: RSA key generation is slow
	a := f.withCA(t)
	inter := a.Intermediate()

	t.Run("list", func(t *testing.T) {
		t.Parallel()
		resp, b := f.do(t, http.MethodGet, "/api/v1/certificate-authorities", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/certificate-authorities = %d %s, want %d", resp.StatusCode, b, http.StatusOK)
		}
		var list []admin.CertificateAuthority
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		byID := map[string]admin.CertificateAuthority{}
		for _, c := range list {
			byID[c.ID] = c
		}
		if len(list) != 2 || len(byID) != 2 {
			t.Fatalf("GET /api/v1/certificate-authorities = %d CAs %v, want the root and the intermediate", len(list), list)
		}
		for _, tc := range []struct {
			id    string
			role  string
			state string
			cert  *x509.Certificate
		}{
			{a.RootID(), store.RoleRoot, "", a.Root()},
			{a.IntermediateID(), store.RoleIntermediate, store.CAStateActive, inter},
		} {
			sum := sha256.Sum256(tc.cert.Raw)
			want := admin.CertificateAuthority{
				ID:        tc.id,
				Role:      tc.role,
				Subject:   tc.cert.Subject.String(),
				Issuer:    tc.cert.Issuer.String(),
				Serial:    strings.ToUpper(tc.cert.SerialNumber.Text(16)),
				NotBefore: tc.cert.NotBefore.UTC(),
				NotAfter:  tc.cert.NotAfter.UTC(),
				SHA256:    strings.ToUpper(hex.EncodeToString(sum[:])),
				SHA1:      byID[tc.id].SHA1,
				Active:    true,
				State:     tc.state,
				KeyOnline: true,
			}
			if diff := cmp.Diff(want, byID[tc.id]); diff != "" {
				t.Errorf("GET /api/v1/certificate-authorities %s mismatch (-want +got):\n%s", tc.role, diff)
			}
			if len(byID[tc.id].SHA1) != 40 {
				t.Errorf("%s sha1 = %q, want 40 hexadecimal characters", tc.role, byID[tc.id].SHA1)
			}
		}
	})

	path := "/api/v1/certificate-authorities/" + a.IntermediateID() + "/cert"
	tests := []struct {
		name      string
		query     string
		wantType  string
		wantExt   string
		wantPEM   bool
		wantError string
	}{
		{name: "default is PEM", wantType: "application/x-pem-file", wantExt: ".pem", wantPEM: true},
		{name: "pem", query: "?format=pem", wantType: "application/x-pem-file", wantExt: ".pem", wantPEM: true},
		{name: "der", query: "?format=der", wantType: "application/pkix-cert", wantExt: ".cer"},
		{name: "unknown format", query: "?format=p12", wantError: `format must be pem or der, not "p12"`},
		{name: "upper case format", query: "?format=DER", wantError: "format must be pem or der"},
	}
	for _, tc := range tests {
		t.Run("download "+tc.name, func(t *testing.T) {
			t.Parallel()
			resp, b := f.do(t, http.MethodGet, path+tc.query, "")
			if tc.wantError != "" {
				wantProblem(t, "GET "+path+tc.query, resp, b, http.StatusBadRequest, tc.wantError)
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d %s, want %d", path+tc.query, resp.StatusCode, b, http.StatusOK)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.wantType {
				t.Errorf("GET %s Content-Type = %q, want %q", path+tc.query, ct, tc.wantType)
			}
			if cd, want := resp.Header.Get("Content-Disposition"), `attachment; filename="`+a.IntermediateID()+tc.wantExt+`"`; cd != want {
				t.Errorf("GET %s Content-Disposition = %q, want %q", path+tc.query, cd, want)
			}
			der := b
			if tc.wantPEM {
				block, rest := pem.Decode(b)
				if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
					t.Fatalf("GET %s = %q, want one PEM CERTIFICATE block", path+tc.query, b)
				}
				der = block.Bytes
			}
			if !bytes.Equal(der, inter.Raw) {
				t.Errorf("GET %s returned a certificate other than the intermediate", path+tc.query)
			}
		})
	}

	t.Run("unknown CA", func(t *testing.T) {
		t.Parallel()
		resp, b := f.do(t, http.MethodGet, "/api/v1/certificate-authorities/nosuchca/cert", "")
		wantProblem(t, "GET /api/v1/certificate-authorities/nosuchca/cert", resp, b, http.StatusNotFound, `no certificate authority "nosuchca"`)
	})
}

// TestSecretsNeverLogged: creating integrations is audited, and neither the
// audit log nor the request log carries a secret key, a password or the
// admin token.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	secrets := map[string]string{"admin token": f.token}
	for _, body := range []string{
		`{"name":"Laptops","platform":"DESKTOP","challengeType":"STATIC"}`,
		`{"name":"Fleet","platform":"DESKTOP","challengeType":"DYNAMIC"}`,
	} {
		in := f.create(t, body)
		if !strings.Contains(f.audit.String(), `"device.integration.create"`) || !strings.Contains(f.audit.String(), in.ID) {
			t.Errorf("audit log = %s, want a device.integration.create event for %s", f.audit.String(), in.ID)
		}
		if in.SecretKey != "" {
			secrets[in.ChallengeType+" secretKey"] = in.SecretKey
		}
		if in.Password != "" {
			secrets[in.ChallengeType+" password"] = in.Password
		}
	}
	if len(secrets) != 3 {
		t.Fatalf("secrets = %d, want the admin token, a STATIC secret key and a DYNAMIC password", len(secrets))
	}
	// Failures log their error; they must not echo anything secret either.
	f.do(t, http.MethodPost, "/api/v1/device-integrations", `{"name":"x","platform":"DESKTOP","challengeType":"STATIC","colour":"red"}`)
	f.doAuth(t, http.MethodGet, "/api/v1/device-integrations", "", "Bearer "+f.token+"x")

	logs := map[string]string{"audit log": f.audit.String(), "request log": f.reqlog.String()}
	if !strings.Contains(logs["request log"], `unknown field`) {
		t.Errorf("request log = %s, want the failed request's error", logs["request log"])
	}
	for logName, out := range logs {
		for what, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s = %s, want no %s", logName, out, what)
			}
		}
	}
}
