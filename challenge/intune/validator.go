package intune

import (
	"context"
	"crypto/sha1" //nolint:gosec // G505: Intune's certificateThumbprint is SHA-1 by definition, not a security use
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// Defaults (PROTOCOLS.md §3.7).
const (
	// DefaultCallTimeout bounds each outbound call.
	DefaultCallTimeout = 10 * time.Second
	// DefaultBudget bounds one enrollment's whole Intune chain (tokens,
	// discovery, validate, sign, notify). It stays under the 30 s a
	// Windows device (WinHTTP's receive timeout) waits for an answer.
	DefaultBudget = 25 * time.Second
)

// Opener opens secrets sealed under the key-encryption key; *ca.KEK
// implements it.
type Opener interface {
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Config configures a Validator.
type Config struct {
	// Opener opens integrations' sealed client secrets (AAD: the
	// integration ID). Required.
	Opener Opener
	// HTTPClient makes the outbound calls; default: a client with the
	// environment's proxy settings. Redirects are never followed.
	HTTPClient *http.Client
	// CallTimeout bounds each outbound call; default DefaultCallTimeout.
	CallTimeout time.Duration
	// Budget bounds one enrollment's Intune chain; default DefaultBudget.
	Budget time.Duration
	// CallerInfo identifies scepca to Intune (callerInfo, UserAgent),
	// e.g. "scepca/v1.2.3"; default "scepca".
	CallerInfo string
	Now        func() time.Time
	// Logger receives debug and info lines (tokens fetched, discovery);
	// never a secret or token.
	Logger *slog.Logger
	// Observe, when set, is told of every call to Intune's SCEP API: its
	// action (ActionValidate, ...), result (ResultSuccess, ResultFailure,
	// ResultNotSent) and duration, token and discovery included. The
	// metrics seam.
	Observe func(action, result string, d time.Duration)
}

// Call results reported to Config.Observe.
const (
	ResultSuccess = "success"  // Intune accepted
	ResultFailure = "failure"  // Intune answered with an error or the call failed
	ResultNotSent = "not_sent" // token or discovery failed first
)

// Validator is the Intune-delegated challenge validator (challenge type
// INTUNE). It implements challenge.Validator and the notifications the scep
// service sends after signing. It keeps one client per integration,
// rebuilt when the integration's Intune settings change. Safe for
// concurrent use.
type Validator struct {
	opener      Opener
	http        *http.Client
	callTimeout time.Duration
	budget      time.Duration
	callerInfo  string
	now         func() time.Time
	log         *slog.Logger
	observe     func(action, result string, d time.Duration)

	mu      sync.Mutex
	clients map[string]*client
}

var _ challenge.Validator = (*Validator)(nil)

// New validates cfg and returns a Validator.
func New(cfg Config) (*Validator, error) {
	if cfg.Opener == nil {
		return nil, errors.New("intune: Opener is required")
	}
	if cfg.CallTimeout < 0 || cfg.Budget < 0 {
		return nil, errors.New("intune: CallTimeout and Budget must not be negative")
	}
	v := &Validator{
		opener:      cfg.Opener,
		callTimeout: cfg.CallTimeout,
		budget:      cfg.Budget,
		callerInfo:  strings.TrimSpace(cfg.CallerInfo),
		now:         cfg.Now,
		log:         cfg.Logger,
		observe:     cfg.Observe,
		clients:     map[string]*client{},
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else if t, ok := http.DefaultTransport.(*http.Transport); ok {
		hc.Transport = t.Clone() // our own connection pool, the environment's proxy
	}
	// A redirect would carry the client secret or a bearer token to a place
	// nobody configured; the reference clients never need one.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	v.http = &hc
	if v.callTimeout == 0 {
		v.callTimeout = DefaultCallTimeout
	}
	if v.budget == 0 {
		v.budget = DefaultBudget
	}
	if v.callerInfo == "" {
		v.callerInfo = "scepca"
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v, nil
}

// Budget is how long one enrollment's Intune chain may take in all; the
// scep service bounds validate, sign and notify by it.
func (v *Validator) Budget() time.Duration { return v.budget }

// Validate implements challenge.Validator with ScepActions/validateRequest:
// nil only when Intune answers code Success. A refusal wraps ErrRefused
// (challenge.ErrInvalid); anything else wraps ErrUnavailable
// (challenge.ErrUnavailable). The CSR goes to Intune byte for byte as it
// was parsed.
func (v *Validator) Validate(ctx context.Context, req challenge.Request) error {
	if err := checkRequest(req); err != nil {
		return err
	}
	c, err := v.client(req.Integration)
	if err != nil {
		return err
	}
	return c.action(ctx, ActionValidate, reqlog.KeyIntuneValidate, validateRequestBody{Request: validateRequest{
		TransactionID:      req.TransactionID,
		CertificateRequest: base64.StdEncoding.EncodeToString(req.CSR.Raw),
		CallerInfo:         v.callerInfo,
	}})
}

// NotifySuccess sends ScepActions/successNotification for cert, issued for
// req. Only after it returns nil may the certificate be handed out
// (PROTOCOLS.md §3.7).
func (v *Validator) NotifySuccess(ctx context.Context, req challenge.Request, cert *x509.Certificate) error {
	if err := checkRequest(req); err != nil {
		return err
	}
	if cert == nil {
		return errors.New("intune: successNotification without a certificate")
	}
	c, err := v.client(req.Integration)
	if err != nil {
		return err
	}
	thumb := sha1.Sum(cert.Raw) //nolint:gosec // G401: the thumbprint Intune expects is SHA-1
	issuer := cert.Issuer.String()
	return c.action(ctx, ActionSuccess, reqlog.KeyIntuneSuccess, successNotificationBody{Notification: successNotification{
		TransactionID:                req.TransactionID,
		CertificateRequest:           base64.StdEncoding.EncodeToString(req.CSR.Raw),
		CertificateThumbprint:        strings.ToUpper(hex.EncodeToString(thumb[:])),
		CertificateSerialNumber:      strings.ToUpper(cert.SerialNumber.Text(16)),
		CertificateExpirationDateUtc: cert.NotAfter.UTC().Format(expirationLayout),
		IssuingCertificateAuthority:  issuer,
		CallerInfo:                   v.callerInfo,
		CAConfiguration:              issuer,
		CertificateAuthority:         issuer,
	}})
}

// NotifyFailure sends ScepActions/failureNotification after a successful
// validate when scepca itself failed to issue (policy, signing, storage):
// hResult is HResultFailInfoBase+failInfo or HResultInternal, description
// is cut to 255 characters. It is best effort: it runs even when ctx is
// already done, bounded by one call timeout, and its error is only for
// the log.
func (v *Validator) NotifyFailure(ctx context.Context, req challenge.Request, hResult int64, description string) error {
	if err := checkRequest(req); err != nil {
		return err
	}
	c, err := v.client(req.Integration)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.callTimeout)
	defer cancel()
	description = truncateDescription(strings.TrimSpace(description))
	if description == "" {
		description = "scepca could not issue the certificate"
	}
	return c.action(ctx, ActionFailure, reqlog.KeyIntuneFailure, failureNotificationBody{Notification: failureNotification{
		TransactionID:      req.TransactionID,
		CertificateRequest: base64.StdEncoding.EncodeToString(req.CSR.Raw),
		HResult:            hResult,
		ErrorDescription:   description,
		CallerInfo:         v.callerInfo,
	}})
}

// checkRequest refuses, without asking Intune, a request Intune could only
// refuse: the reference library rejects any empty required field.
func checkRequest(req challenge.Request) error {
	switch {
	case req.Integration == nil:
		return fmt.Errorf("intune challenge: no integration: %w", ErrNotConfigured)
	case req.Password == "":
		return fmt.Errorf("intune challenge: no challenge password in request: %w", challenge.ErrInvalid)
	case req.TransactionID == "":
		return fmt.Errorf("intune challenge: empty transactionID: %w", challenge.ErrInvalid)
	case req.CSR == nil || len(req.CSR.Raw) == 0:
		return fmt.Errorf("intune challenge: no CSR: %w", challenge.ErrInvalid)
	}
	return nil
}

// client returns the integration's client, building it on first use and
// again whenever its Intune settings changed.
func (v *Validator) client(in *store.Integration) (*client, error) {
	fp := fingerprint(in)
	v.mu.Lock()
	defer v.mu.Unlock()
	if c := v.clients[in.ID]; c != nil && c.fingerprint == fp {
		return c, nil
	}
	s, err := v.settings(in)
	if err != nil {
		return nil, err
	}
	c := &client{v: v, s: s, fingerprint: fp}
	v.clients[in.ID] = c
	return c, nil
}

// settings checks an integration's Intune fields and opens its secret.
func (v *Validator) settings(in *store.Integration) (settings, error) {
	fail := func(err error) (settings, error) {
		return settings{}, &Error{Op: "configuration", kind: ErrNotConfigured, err: fmt.Errorf("integration %s: %w", in.ID, err)}
	}
	if in.ChallengeType != store.ChallengeIntune {
		return fail(fmt.Errorf("challenge type %s", in.ChallengeType))
	}
	s := settings{integrationID: in.ID}
	var err error
	if s.tenant, err = NormalizeTenant(in.IntuneTenant); err != nil {
		return fail(err)
	}
	if s.clientID, err = NormalizeClientID(in.IntuneClientID); err != nil {
		return fail(err)
	}
	if s.authority, err = NormalizeBaseURL(in.IntuneAuthorityURL, DefaultAuthorityURL); err != nil {
		return fail(fmt.Errorf("authority URL: %w", err))
	}
	if s.graph, err = NormalizeBaseURL(in.IntuneGraphURL, DefaultGraphURL); err != nil {
		return fail(fmt.Errorf("graph URL: %w", err))
	}
	if len(in.IntuneSecretCiphertext) == 0 {
		return fail(errors.New("no client secret"))
	}
	plain, err := v.opener.Open(in.IntuneSecretCiphertext, []byte(in.ID))
	if err != nil {
		return fail(fmt.Errorf("client secret: %w", err))
	}
	s.secret = ClientSecret(plain)
	return s, nil
}
