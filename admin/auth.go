package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scepca/scepca/internal/auditlog"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// Token is a bearer token. It never prints.
type Token string

// String hides the token.
func (Token) String() string { return "REDACTED" }

// LogValue hides the token in structured logs.
func (Token) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// TokenHash is what scepca keeps of a token: its SHA-256. Tokens are
// 256-bit random values, so a fast hash suffices.
func TokenHash(t Token) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// ActorAdminToken is the audit actor of the bootstrap admin token
// (<data>/admin-token or SCEPCA_ADMIN_TOKEN); an API token is
// "token:<id>".
const ActorAdminToken = "admin-token"

// DefaultTokenCacheTTL is how long a validated API token is trusted without
// reading the store again; it is the longest a token deleted on another
// replica keeps working there. A deletion through this replica takes
// effect at once.
const DefaultTokenCacheTTL = 30 * time.Second

// principal is who a request authenticated as.
type principal struct {
	actor string // audit actor
	scope string // store.ScopeAdmin or store.ScopeVerify
}

// tokenGetter is what authentication reads from the store.
type tokenGetter interface {
	GetToken(ctx context.Context, id string) (*store.APIToken, error)
}

// authenticator checks bearer tokens: the bootstrap admin tokens by hash,
// API tokens (scepca_<id>_<secret>) by ID in the store, then by hash.
// Hashes are compared in constant time.
type authenticator struct {
	bootstrap [][]byte
	tokens    tokenGetter
	now       func() time.Time
	ttl       time.Duration

	mu    sync.Mutex
	cache map[string]cachedToken // validated API tokens by ID
}

type cachedToken struct {
	t     *store.APIToken
	until time.Time
}

// errUnauthenticated is a 401 answer; its detail says which.
func errUnauthenticated(detail string) error {
	return problemf(http.StatusUnauthorized, "%s", detail)
}

// authenticate returns the principal of the raw bearer token, a 401
// problem when the token is missing, unknown, wrong or expired, or a store
// error.
func (a *authenticator) authenticate(ctx context.Context, raw string) (principal, error) {
	got := TokenHash(Token(raw))
	match := 0
	for _, h := range a.bootstrap {
		match |= subtle.ConstantTimeCompare(got, h)
	}
	if match == 1 {
		return principal{actor: ActorAdminToken, scope: store.ScopeAdmin}, nil
	}
	id, ok := parseAPIToken(raw)
	if !ok {
		return principal{}, errUnauthenticated("invalid bearer token")
	}
	t, err := a.lookup(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, errUnauthenticated("invalid bearer token")
	}
	if err != nil {
		return principal{}, fmt.Errorf("admin: look up token %s: %w", id, err)
	}
	if subtle.ConstantTimeCompare(got, t.Hash) != 1 {
		return principal{}, errUnauthenticated("invalid bearer token")
	}
	if !t.ExpiresAt.IsZero() && !a.now().Before(t.ExpiresAt) {
		return principal{}, errUnauthenticated("expired bearer token")
	}
	return principal{actor: "token:" + t.ID, scope: t.Scope}, nil
}

// lookup returns token id from the cache or the store.
func (a *authenticator) lookup(ctx context.Context, id string) (*store.APIToken, error) {
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[id]
	a.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.t, nil
	}
	t, err := a.tokens.GetToken(ctx, id)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		delete(a.cache, id)
		return nil, err
	}
	// Only stored tokens are cached, so the cache is as large as the
	// token list; stale entries of other IDs go on the way.
	for k, v := range a.cache {
		if !now.Before(v.until) {
			delete(a.cache, k)
		}
	}
	a.cache[id] = cachedToken{t: t, until: now.Add(a.ttl)}
	return t, nil
}

// forget drops token id from the cache (after its deletion).
func (a *authenticator) forget(id string) {
	a.mu.Lock()
	delete(a.cache, id)
	a.mu.Unlock()
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// authorize answers 401 unless the request carries a valid bearer token,
// and 403 when the token's scope is not among scopes. It puts the token's
// audit actor in the context (auditlog.WithActor) and on the request
// event.
func (a *API) authorize(scopes []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r)
		if !ok {
			writeProblem(w, r, errUnauthenticated("missing bearer token"))
			return
		}
		p, err := a.auth.authenticate(r.Context(), raw)
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		reqlog.Add(r.Context(), slog.String(reqlog.KeyActor, p.actor))
		if !slices.Contains(scopes, p.scope) {
			writeProblem(w, r, problemf(http.StatusForbidden, "this token's scope %s does not reach %s %s (a VERIFY token reaches only /api/v1/attestation/*)", p.scope, r.Method, r.URL.Path))
			return
		}
		next.ServeHTTP(w, r.WithContext(auditlog.WithActor(r.Context(), p.actor)))
	})
}
