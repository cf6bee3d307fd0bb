package admin

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/scepca/scepca/store"
)

// API tokens (docs/api.md, "API tokens"): scepca_<id>_<secret>, where id is
// 16 hex digits (the store key, so a request costs one lookup) and secret
// is 256 random bits in unpadded base64url (43 characters). The store keeps
// only the SHA-256 of the whole token; the token is shown once, at
// creation.
const (
	tokenPrefix    = "scepca_"
	tokenIDBytes   = 8
	tokenSecretLen = 43
	maxTokenName   = 100
)

var tokenIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// parseAPIToken returns the ID of a well-formed API token.
func parseAPIToken(raw string) (string, bool) {
	rest, ok := strings.CutPrefix(raw, tokenPrefix)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || !tokenIDPattern.MatchString(id) || len(secret) != tokenSecretLen {
		return "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return "", false
	}
	return id, true
}

// newAPIToken returns a fresh token and its ID.
func newAPIToken() (id string, tok Token) {
	idb := make([]byte, tokenIDBytes)
	secret := make([]byte, 32)
	_, _ = rand.Read(idb) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(secret)
	id = hex.EncodeToString(idb)
	return id, Token(tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret))
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
	// ExpiresAt, when set, ends the token's validity; it must be in the
	// future.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// TokenInfo is an API token as listed: never the token or its hash.
type TokenInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// Expired is true once ExpiresAt has passed; an expired token answers
	// 401 until it is deleted.
	Expired bool `json:"expired"`
}

// CreatedToken is the answer to POST /api/v1/tokens, the one time the
// token is shown.
type CreatedToken struct {
	TokenInfo
	Token string `json:"token"`
}

func (a *API) tokenInfo(t *store.APIToken) TokenInfo {
	return TokenInfo{
		ID:        t.ID,
		Name:      t.Name,
		Scope:     t.Scope,
		CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt,
		Expired:   !t.ExpiresAt.IsZero() && !a.now().Before(t.ExpiresAt),
	}
}

func (req *TokenRequest) validate(now time.Time) error {
	req.Name = strings.TrimSpace(req.Name)
	switch {
	case req.Name == "":
		return problemf(http.StatusBadRequest, "name is required")
	case len(req.Name) > maxTokenName:
		return problemf(http.StatusBadRequest, "name must be at most %d bytes", maxTokenName)
	case strings.IndexFunc(req.Name, unicode.IsControl) >= 0:
		return problemf(http.StatusBadRequest, "name must not contain control characters")
	case req.Scope != store.ScopeAdmin && req.Scope != store.ScopeVerify:
		return problemf(http.StatusBadRequest, "scope must be ADMIN or VERIFY")
	case !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now):
		return problemf(http.StatusBadRequest, "expiresAt must be in the future")
	}
	return nil
}

// createToken mints an API token and shows it once.
func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	var req TokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	now := a.now().UTC()
	if err := req.validate(now); err != nil {
		return err
	}
	id, tok := newAPIToken()
	t := &store.APIToken{
		ID:        id,
		Name:      req.Name,
		Scope:     req.Scope,
		Hash:      TokenHash(tok),
		CreatedAt: now,
		ExpiresAt: req.ExpiresAt.UTC(),
	}
	if err := a.store.CreateToken(r.Context(), t); err != nil {
		return err
	}
	a.audit.InfoContext(r.Context(), "token.create", "target", id, "name", t.Name, "scope", t.Scope, "expires_at", t.ExpiresAt, "outcome", "success")
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, CreatedToken{TokenInfo: a.tokenInfo(t), Token: string(tok)})
}

// listTokens lists the API tokens (not the bootstrap admin token).
func (a *API) listTokens(w http.ResponseWriter, r *http.Request) error {
	list, err := a.store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	out := make([]TokenInfo, 0, len(list))
	for _, t := range list {
		out = append(out, a.tokenInfo(t))
	}
	return writeJSON(w, http.StatusOK, out)
}

// deleteToken deletes an API token; this replica stops accepting it at
// once, others within DefaultTokenCacheTTL.
func (a *API) deleteToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !tokenIDPattern.MatchString(id) {
		return problemf(http.StatusNotFound, "no token %q", id)
	}
	t, err := a.store.GetToken(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, "no token %q", id)
	}
	if err != nil {
		return err
	}
	err = a.store.DeleteToken(r.Context(), id)
	a.auth.forget(id)
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, "no token %q", id)
	}
	if err != nil {
		return err
	}
	a.audit.InfoContext(r.Context(), "token.delete", "target", id, "name", t.Name, "scope", t.Scope, "outcome", "success")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
