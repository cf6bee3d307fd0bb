package intune

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// Cache lifetimes (PROTOCOLS.md §3.3, §3.8).
const (
	// tokenMargin: a token is reused until this long before it expires.
	tokenMargin = 5 * time.Minute
	// discoveryTTL: how long a discovered service URI is reused.
	discoveryTTL = 24 * time.Hour
)

// settings is what one integration's client is built from.
type settings struct {
	integrationID string
	tenant        string
	clientID      string
	secret        ClientSecret
	authority     string
	graph         string
}

// fingerprint identifies an integration's Intune configuration: a change of
// any field (a rotated secret included) builds a new client.
func fingerprint(in *store.Integration) string {
	h := sha256.New()
	for _, f := range []string{in.ID, in.IntuneTenant, in.IntuneClientID, in.IntuneAuthorityURL, in.IntuneGraphURL, string(in.IntuneSecretCiphertext)} {
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// client is one integration's Intune client, shared by all its requests:
// it caches both tokens and the discovered service URI.
type client struct {
	v           *Validator
	s           settings
	fingerprint string
	graphToken  cache[token]
	intuneToken cache[token]
	service     cache[string]
}

// cache holds one value with an expiry and lets one fetch run at a time:
// concurrent callers wait for it and share its result.
type cache[T comparable] struct {
	mu      sync.Mutex
	value   T
	expires time.Time
	flight  *flight[T]
}

type flight[T any] struct {
	done  chan struct{}
	value T
	err   error
}

// get returns the cached value, or fetches it. fetch returns the value and
// how long it may be reused (<= 0: not at all).
func (c *cache[T]) get(ctx context.Context, now time.Time, fetch func(context.Context) (T, time.Duration, error)) (T, error) {
	var zero T
	c.mu.Lock()
	if c.value != zero && now.Before(c.expires) {
		v := c.value
		c.mu.Unlock()
		return v, nil
	}
	if f := c.flight; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.value, f.err
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
	f := &flight[T]{done: make(chan struct{})}
	c.flight = f
	c.mu.Unlock()

	var ttl time.Duration
	f.value, ttl, f.err = fetch(ctx)
	c.mu.Lock()
	c.flight = nil
	if f.err == nil && ttl > 0 {
		c.value, c.expires = f.value, now.Add(ttl)
	}
	c.mu.Unlock()
	close(f.done)
	return f.value, f.err
}

// drop forgets the cached value if it is still v (a newer one is kept).
func (c *cache[T]) drop(v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.value == v {
		var zero T
		c.value, c.expires = zero, time.Time{}
	}
}

// token returns a cached or fresh access token for scope.
func (c *client) token(ctx context.Context, scope string) (token, error) {
	cc := &c.intuneToken
	if scope == GraphScope {
		cc = &c.graphToken
	}
	return cc.get(ctx, c.v.now(), func(ctx context.Context) (token, time.Duration, error) {
		tok, life, err := c.fetchToken(ctx, scope)
		return tok, life - tokenMargin, err
	})
}

// dropToken forgets tok (after a 401 or 403), so the next call fetches a
// new one: a token minted before consent propagated lacks its roles for
// its whole lifetime.
func (c *client) dropToken(scope string, tok token) {
	if scope == GraphScope {
		c.graphToken.drop(tok)
	} else {
		c.intuneToken.drop(tok)
	}
	c.v.log.Debug("intune token dropped", "integration_id", c.s.integrationID, "scope", scope)
}

// fetchToken runs the client-credentials grant against the v2 token
// endpoint (PROTOCOLS.md §3.3).
func (c *client) fetchToken(ctx context.Context, scope string) (token, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.s.clientID},
		"client_secret": {c.s.secret.Reveal()},
		"scope":         {scope},
	}
	endpoint := c.s.authority + "/" + url.PathEscape(c.s.tenant) + "/oauth2/v2.0/token"
	rid := newRequestID()
	e := &Error{Op: "token", Scope: scope, RequestID: rid}
	h := c.headers(rid)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body, err := c.do(ctx, http.MethodPost, endpoint, []byte(form.Encode()), h)
	if err != nil {
		e.kind, e.err = ErrUnavailable, err
		return "", 0, e
	}
	e.Status = status
	if status != http.StatusOK {
		e.kind = ErrToken
		code, aadsts, desc := parseOAuthError(body)
		e.Code, e.AADSTS, e.Description = code, aadsts, shorten(desc, c.s.secret)
		return "", 0, e
	}
	tok, life, err := parseToken(body)
	if err != nil {
		e.kind, e.err = ErrUnavailable, err
		return "", 0, e
	}
	c.v.log.Debug("intune token fetched", "integration_id", c.s.integrationID, "scope", scope, "expires_in", life)
	return tok, life, nil
}

// serviceURI returns the cached or freshly discovered URI of
// ScepRequestValidationFEService.
func (c *client) serviceURI(ctx context.Context) (string, error) {
	return c.service.get(ctx, c.v.now(), func(ctx context.Context) (string, time.Duration, error) {
		uri, err := c.discover(ctx)
		return uri, discoveryTTL, err
	})
}

// clearService forgets the discovered URI, so the next call rediscovers.
func (c *client) clearService(uri string) {
	c.service.drop(uri)
}

// discover asks Graph for the Intune service principal's endpoints
// (PROTOCOLS.md §3.4).
func (c *client) discover(ctx context.Context) (string, error) {
	tok, err := c.token(ctx, GraphScope)
	if err != nil {
		return "", err
	}
	rid := newRequestID()
	e := &Error{Op: "discovery", RequestID: rid}
	endpoint := c.s.graph + "/v1.0/servicePrincipals/appId=" + IntuneAppID + "/endpoints"
	h := c.headers(rid)
	h.Set("Authorization", tok.bearer())
	status, body, err := c.do(ctx, http.MethodGet, endpoint, nil, h)
	if err != nil {
		e.kind, e.err = ErrUnavailable, err
		return "", e
	}
	e.Status = status
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		c.dropToken(GraphScope, tok)
	}
	if status != http.StatusOK {
		e.kind = ErrUnavailable
		if status == http.StatusForbidden {
			e.kind = ErrForbidden
		}
		code, msg := parseServiceError(body)
		e.Code, e.Description = code, shorten(msg, c.s.secret)
		return "", e
	}
	uri, ok, err := parseDiscovery(body)
	switch {
	case err != nil:
		e.kind, e.err = ErrUnavailable, err
		return "", e
	case !ok:
		e.kind = ErrServiceNotFound
		e.Description = "Did not find service named " + ServiceName
		return "", e
	}
	u, err := url.Parse(uri)
	if err == nil {
		err = checkURL(u)
	}
	if err != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		e.kind, e.err = ErrUnavailable, fmt.Errorf("discovered uri %q refused", shorten(uri, ""))
		return "", e
	}
	uri = strings.TrimRight(uri, "/")
	c.v.log.Info("intune service discovered", "integration_id", c.s.integrationID, "uri", uri)
	return uri, nil
}

// action posts one ScepActions call and interprets the answer: nil for
// code Success; an *Error wrapping ErrRefused for any other code; an
// *Error wrapping ErrUnavailable for everything else (PROTOCOLS.md §3.6).
// A transport error or non-2xx clears the discovered URI; a 401 or 403
// also drops the Intune token. The outcome goes to the request's wide
// event under key.
func (c *client) action(ctx context.Context, name, key string, payload any) error {
	start := time.Now()
	err := c.post(ctx, name, payload)
	e, _ := errors.AsType[*Error](err)
	result := ResultFailure
	switch {
	case err == nil:
		result = ResultSuccess
		reqlog.Add(ctx, slog.Group(key, slog.String("code", codeSuccess)))
	case e != nil && e.Op == name:
		reqlog.Add(ctx, slog.Group(key, slog.Int("status", e.Status), slog.String("code", e.Code), slog.String("client_request_id", e.RequestID)))
	default: // token or discovery failed first
		result = ResultNotSent
		reqlog.Add(ctx, slog.Group(key, slog.String("error", "not sent")))
	}
	if c.v.observe != nil {
		c.v.observe(name, result, time.Since(start))
	}
	return err
}

func (c *client) post(ctx context.Context, name string, payload any) error {
	uri, err := c.serviceURI(ctx)
	if err != nil {
		return err
	}
	tok, err := c.token(ctx, IntuneScope)
	if err != nil {
		return err
	}
	e := &Error{Op: name, RequestID: newRequestID()}
	body, err := json.Marshal(payload)
	if err != nil {
		e.kind, e.err = ErrUnavailable, err
		return e
	}
	h := c.headers(e.RequestID)
	h.Set("Authorization", tok.bearer())
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Api-Version", APIVersion)
	h["UserAgent"] = []string{c.v.callerInfo} // sic: no hyphen, as the reference clients send it
	status, resp, err := c.do(ctx, http.MethodPost, uri+"/ScepActions/"+name, body, h)
	if err != nil {
		c.clearService(uri)
		e.kind, e.err = ErrUnavailable, err
		return e
	}
	e.Status = status
	if status < 200 || status > 299 {
		c.clearService(uri)
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			c.dropToken(IntuneScope, tok)
		}
		code, msg := parseServiceError(resp)
		e.kind, e.Code, e.Description = ErrUnavailable, code, shorten(msg, c.s.secret)
		return e
	}
	code, desc, err := parseAction(resp)
	if err != nil {
		e.kind, e.err = ErrUnavailable, err
		return e
	}
	if code != codeSuccess {
		e.kind, e.Code, e.Description = ErrRefused, code, shorten(desc, c.s.secret)
		return e
	}
	return nil
}

// do performs one HTTP call with the per-call timeout and returns the
// status and (bounded) body. Redirects are not followed (see New).
func (c *client) do(ctx context.Context, method, endpoint string, body []byte, header http.Header) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.v.callTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header = header
	resp, err := c.v.http.Do(req)
	if err != nil {
		return 0, nil, scrubURLError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, data, nil
}

// headers are the headers every call sends.
func (c *client) headers(requestID string) http.Header {
	return http.Header{
		"Accept":            {"application/json"},
		"Client-Request-Id": {requestID},
		"User-Agent":        {c.v.callerInfo},
	}
}

// scrubURLError keeps a transport error's cause and operation but not the
// full URL with its query, should one ever carry something sensitive.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u, perr := url.Parse(ue.URL)
		if perr == nil {
			u.RawQuery, u.User = "", nil
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}
