package challenge

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/ndesclient"
	"github.com/scepca/scepca/internal/syncbuf"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

var update = flag.Bool("update", false, "update golden files")

// clock is an injectable, advanceable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// events records what Dynamic reports to its metrics seam.
type events struct {
	mu sync.Mutex
	n  map[string]int
}

func (e *events) observe(event, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = map[string]int{}
	}
	e.n[event+":"+reason]++
}

func (e *events) count(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n[key]
}

type dynamicFixture struct {
	d      *Dynamic
	st     *bolt.DB
	clock  *clock
	events *events
	integ  *store.Integration
	pass   Secret
	audit  *syncbuf.Buffer
}

// newDynamicFixture makes a Dynamic over a fresh bbolt store with one
// enabled DYNAMIC integration; edit adjusts the integration before it is
// stored.
func newDynamicFixture(t *testing.T, edit func(*store.Integration)) *dynamicFixture {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &dynamicFixture{st: st, clock: &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}, events: &events{}, audit: &syncbuf.Buffer{}}
	f.pass, err = GenerateSecret(SecretLength)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := HashSecret(f.pass)
	if err != nil {
		t.Fatal(err)
	}
	f.integ = &store.Integration{ID: "intdyn", Platform: store.PlatformDesktop, ChallengeType: store.ChallengeDynamic, Enabled: true, Username: "scepca-intdyn", SecretHash: hash}
	if edit != nil {
		edit(f.integ)
	}
	if err := st.CreateIntegration(t.Context(), f.integ); err != nil {
		t.Fatal(err)
	}
	f.d, err = NewDynamic(DynamicConfig{
		Store:    st,
		Now:      f.clock.Now,
		Observe:  f.events.observe,
		Audit:    newTestLogger(f),
		Throttle: ThrottleConfig{Failures: 3, Window: time.Minute, Block: 2 * time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newTestLogger(f *dynamicFixture) *slog.Logger {
	return slog.New(slog.NewJSONHandler(f.audit, nil))
}

// fetch calls the page handler directly from source with the given
// credentials (user "" sends none).
func (f *dynamicFixture) fetch(t *testing.T, method, source, user string, pass Secret) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	f.d.Register(mux)
	r := httptest.NewRequestWithContext(t.Context(), method, ChallengePath(f.integ.ID), nil)
	r.RemoteAddr = source + ":40000"
	if user != "" {
		r.SetBasicAuth(user, pass.Reveal())
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

func (f *dynamicFixture) mint(t *testing.T) Secret {
	t.Helper()
	w := f.fetch(t, http.MethodGet, "192.0.2.1", f.integ.Username, f.pass)
	pw, err := ndesclient.ParsePage(w.Body.Bytes())
	if w.Code != http.StatusOK || err != nil {
		t.Fatalf("fetch = %d, %v\n%s", w.Code, err, w.Body.String())
	}
	return Secret(pw)
}

func (f *dynamicFixture) request(pw Secret, txID string, key string) Request {
	return Request{Integration: f.integ, Password: pw, TransactionID: txID, PublicKeyHash: []byte(key)}
}

var hex16 = regexp.MustCompile(`^[0-9A-F]{16}$`)

func TestChallengePageThroughFleetClient(t *testing.T) {
	t.Parallel()
	for _, ndes := range []bool{false, true} {
		t.Run(fmt.Sprintf("ndes=%v", ndes), func(t *testing.T) {
			t.Parallel()
			f := newDynamicFixture(t, func(in *store.Integration) { in.NDESEncoding = ndes })
			mux := http.NewServeMux()
			f.d.Register(mux)
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			url := srv.URL + ChallengePath(f.integ.ID)

			// Anonymous probe first: 401 asking for Basic.
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
				t.Fatalf("anonymous GET = %d %q, want 401 with Basic", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			pw, err := ndesclient.Fetch(t.Context(), srv.Client(), url, f.integ.Username, f.pass.Reveal())
			if err != nil {
				t.Fatalf("Fetch() = %v", err)
			}
			if !hex16.MatchString(pw) || !IsPrintableString(pw) {
				t.Errorf("Fetch() = %q, want 16 uppercase hex characters", pw)
			}
			if err := f.d.Validate(t.Context(), f.request(Secret(pw), "tx1", "k1")); err != nil {
				t.Errorf("Validate(fetched) = %v", err)
			}
			if strings.Contains(f.audit.String(), pw) || strings.Contains(f.audit.String(), f.pass.Reveal()) {
				t.Error("audit log contains a password")
			}
			w := f.fetch(t, http.MethodPost, "192.0.2.9", f.integ.Username, f.pass)
			if w.Code != http.StatusOK {
				t.Errorf("POST = %d, want 200", w.Code)
			}
			ct := w.Header().Get("Content-Type")
			body := w.Body.Bytes()
			if ndes {
				if ct != "text/html" || !bytes.HasPrefix(body, []byte{0x3C, 0x00}) {
					t.Errorf("NDES page: Content-Type %q, first bytes % x, want text/html and 3c 00", ct, body[:4])
				}
			} else if ct != "text/html; charset=utf-8" || !bytes.Contains(body, []byte("The enrollment challenge password is: <B> ")) {
				t.Errorf("UTF-8 page: Content-Type %q body %q", ct, body)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", w.Header().Get("Cache-Control"))
			}
		})
	}
}

// TestChallengePageGolden pins the page bytes in both encodings.
func TestChallengePageGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ndes bool
		body string
	}{
		{"password-utf8", false, passwordBody("8CE317021F690069", 60)},
		{"password-utf16le", true, passwordBody("8CE317021F690069", 60)},
		{"cachefull-utf8", false, cacheFullBody},
		{"permission-utf8", false, permissionBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			(&Dynamic{}).writePage(w, &store.Integration{NDESEncoding: tc.ndes}, tc.body)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, w.Body.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.Body.Bytes(), want) {
				t.Errorf("page %s differs from %s (run with -update and review)", tc.name, path)
			}
		})
	}
}

func TestChallengePageAuthAndThrottle(t *testing.T) {
	t.Parallel()
	f := newDynamicFixture(t, nil)
	for _, tc := range []struct {
		name string
		user string
		pass Secret
	}{
		{"no credentials", "", ""},
		{"wrong password", f.integ.Username, "wrong"},
		{"wrong user", "someone", f.pass},
	} {
		w := f.fetch(t, http.MethodGet, "198.51.100.7", tc.user, tc.pass)
		if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
			t.Errorf("fetch(%s) = %d %q, want 401 Basic", tc.name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	// Two bad logins so far from .7 (the anonymous probe does not count);
	// the third blocks it.
	f.fetch(t, http.MethodGet, "198.51.100.7", "x", "y")
	w := f.fetch(t, http.MethodGet, "198.51.100.7", f.integ.Username, f.pass)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "120" {
		t.Fatalf("fetch after 3 failures = %d Retry-After %q, want 429 and 120", w.Code, w.Header().Get("Retry-After"))
	}
	// The right caller elsewhere is not locked out.
	if w := f.fetch(t, http.MethodGet, "203.0.113.5", f.integ.Username, f.pass); w.Code != http.StatusOK {
		t.Errorf("fetch from another source = %d, want 200", w.Code)
	}
	f.clock.Advance(2 * time.Minute)
	if w := f.fetch(t, http.MethodGet, "198.51.100.7", f.integ.Username, f.pass); w.Code != http.StatusOK {
		t.Errorf("fetch after the block = %d, want 200", w.Code)
	}
	if f.events.count("rejected:throttled") != 1 || f.events.count("rejected:bad_credentials") != 3 {
		t.Errorf("events = %v", f.events.n)
	}
}

func TestChallengePageErrorPages(t *testing.T) {
	t.Parallel()
	full := newDynamicFixture(t, func(in *store.Integration) { in.MaxOutstanding = 2 })
	first := full.mint(t)
	full.mint(t)
	w := full.fetch(t, http.MethodGet, "192.0.2.1", full.integ.Username, full.pass)
	if _, err := ndesclient.ParsePage(w.Body.Bytes()); w.Code != http.StatusOK || !errors.Is(err, ndesclient.ErrCacheFull) {
		t.Errorf("third fetch = %d, %v, want 200 and the cache-full page", w.Code, err)
	}
	if err := full.d.Validate(t.Context(), full.request(first, "tx", "k")); err != nil {
		t.Fatal(err)
	}
	full.mint(t) // a used challenge frees its slot

	disabled := newDynamicFixture(t, func(in *store.Integration) { in.Enabled = false })
	w = disabled.fetch(t, http.MethodGet, "192.0.2.1", disabled.integ.Username, disabled.pass)
	if _, err := ndesclient.ParsePage(w.Body.Bytes()); !errors.Is(err, ndesclient.ErrPermission) {
		t.Errorf("disabled integration page = %v, want the permission page", err)
	}
	static := newDynamicFixture(t, func(in *store.Integration) { in.ChallengeType = store.ChallengeStatic })
	w = static.fetch(t, http.MethodGet, "192.0.2.1", static.integ.Username, static.pass)
	if _, err := ndesclient.ParsePage(w.Body.Bytes()); !errors.Is(err, ndesclient.ErrPermission) {
		t.Errorf("static integration page = %v, want the permission page", err)
	}
}

func TestDynamicValidate(t *testing.T) {
	t.Parallel()
	f := newDynamicFixture(t, func(in *store.Integration) { in.ChallengeTTLMinutes = 30 })
	other := &store.Integration{ID: "intother", ChallengeType: store.ChallengeDynamic}
	ctx := t.Context()

	pw := f.mint(t)
	if err := f.d.Validate(ctx, f.request(pw, "tx1", "key1")); err != nil {
		t.Fatalf("Validate(first use) = %v", err)
	}
	if err := f.d.Validate(ctx, f.request(pw, "tx1", "key1")); err != nil {
		t.Errorf("Validate(retry of the same transaction) = %v, want nil", err)
	}
	for _, tc := range []struct {
		name string
		req  Request
		want error
	}{
		{"another transaction", f.request(pw, "tx2", "key2"), ErrUsed},
		{"same transaction, other key", f.request(pw, "tx1", "key2"), ErrUsed},
		{"another integration", Request{Integration: other, Password: pw, TransactionID: "tx3"}, ErrInvalid},
		{"unknown", f.request("0123456789ABCDEF", "tx4", "k"), ErrInvalid},
		{"empty", f.request("", "tx5", "k"), ErrInvalid},
	} {
		if err := f.d.Validate(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("Validate(%s) = %v, want %v", tc.name, err, tc.want)
		}
	}

	// Expiry on the injected clock, then the sweep.
	late := f.mint(t)
	f.clock.Advance(30 * time.Minute)
	if err := f.d.Validate(ctx, f.request(late, "tx6", "k")); !errors.Is(err, ErrExpired) {
		t.Errorf("Validate(after TTL) = %v, want %v", err, ErrExpired)
	}
	n, err := f.d.Sweep(ctx)
	if err != nil || n != 2 {
		t.Errorf("Sweep() = %d, %v, want 2 (the used and the expired challenge)", n, err)
	}
	if err := f.d.Validate(ctx, f.request(late, "tx6", "k")); !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate(after sweep) = %v, want %v", err, ErrInvalid)
	}
	for key, want := range map[string]int{"minted:": 2, "consumed:": 2, "expired:": 2, "rejected:used": 2, "rejected:unknown": 3, "rejected:expired": 1, "rejected:missing": 1} {
		if got := f.events.count(key); got != want {
			t.Errorf("events[%s] = %d, want %d", key, got, want)
		}
	}
}

// TestDynamicRace races 100 transactions for one challenge: exactly one wins.
func TestDynamicRace(t *testing.T) {
	t.Parallel()
	f := newDynamicFixture(t, nil)
	pw := f.mint(t)
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f.d.Validate(t.Context(), f.request(pw, fmt.Sprintf("tx%d", i), fmt.Sprintf("key%d", i)))
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrUsed):
			t.Errorf("Validate(racer %d) = %v, want nil or %v", i, err, ErrUsed)
		}
	}
	if wins != 1 {
		t.Errorf("%d racers won, want exactly 1", wins)
	}
}

// FuzzChallengePage drives the page with arbitrary methods, Authorization
// headers and bodies: never a panic, never a 5xx, and a 200 with a password
// only for the right credentials.
func FuzzChallengePage(f *testing.F) {
	f.Add("GET", "Basic c2NlcGNhLWludGR5bjp4", "")
	f.Add("POST", "Basic !!!", "a=b&c=%zz")
	f.Add("GET", "Bearer x", "")
	f.Add("POST", "basic Og==", strings.Repeat("x", 1000))
	f.Add("GET", "Basic "+strings.Repeat("QUFB", 300), "")
	f.Fuzz(func(t *testing.T, method, auth, body string) {
		fx := newDynamicFixture(t, nil)
		mux := http.NewServeMux()
		fx.d.Register(mux)
		if method != http.MethodGet {
			method = http.MethodPost
		}
		r := httptest.NewRequestWithContext(t.Context(), method, ChallengePath(fx.integ.ID), strings.NewReader(body))
		r.Header.Set("Authorization", auth)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for auth %q", w.Code, auth)
		}
		if _, err := ndesclient.ParsePage(w.Body.Bytes()); err == nil && w.Code == http.StatusOK {
			t.Fatalf("minted a challenge for auth %q", auth)
		}
	})
}

// TestChallengePageOverlapAndDeleted: after a reset with an overlap window
// the replaced page password logs in until the window ends; a deleted
// integration answers the permission page.
func TestChallengePageOverlapAndDeleted(t *testing.T) {
	t.Parallel()
	var old Secret
	f := newDynamicFixture(t, nil)
	old = f.pass
	f.integ.PreviousSecretHash = f.integ.SecretHash
	f.integ.PreviousSecretUntil = f.clock.Now().Add(10 * time.Minute)
	f.pass, f.integ.SecretHash = newHashedSecret(t)
	if err := f.st.UpdateIntegration(t.Context(), f.integ); err != nil {
		t.Fatal(err)
	}
	for _, pass := range []Secret{f.pass, old} {
		if _, err := ndesclient.ParsePage(f.fetch(t, http.MethodGet, "192.0.2.1", f.integ.Username, pass).Body.Bytes()); err != nil {
			t.Errorf("fetch in the overlap window = %v, want a challenge", err)
		}
	}
	f.clock.Advance(10 * time.Minute)
	if w := f.fetch(t, http.MethodGet, "192.0.2.1", f.integ.Username, old); w.Code != http.StatusUnauthorized {
		t.Errorf("fetch with the old password after the window = %d, want 401", w.Code)
	}
	f.mint(t)

	f.integ.DeletedAt = f.clock.Now()
	if err := f.st.UpdateIntegration(t.Context(), f.integ); err != nil {
		t.Fatal(err)
	}
	w := f.fetch(t, http.MethodGet, "192.0.2.1", f.integ.Username, f.pass)
	if _, err := ndesclient.ParsePage(w.Body.Bytes()); !errors.Is(err, ndesclient.ErrPermission) {
		t.Errorf("deleted integration page = %v, want the permission page", err)
	}
}
