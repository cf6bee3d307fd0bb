package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/store"
)

// stores is the storage the admin API uses.
type stores interface {
	store.IntegrationStore
	ListCAs(ctx context.Context) ([]*store.CA, error)
	GetCA(ctx context.Context, id string) (*store.CA, error)
	CreateCA(ctx context.Context, c *store.CA) error
	DeleteCA(ctx context.Context, id string) error
	deviceStores
	certStores
	store.TokenStore
	ListEvents(ctx context.Context, f store.EventFilter) ([]*store.Event, error)
}

// Config configures the admin API.
type Config struct {
	Store stores
	// PublicURL is the externally reachable base URL (scheme://host[:port]),
	// from which SCEP URLs are built.
	PublicURL string
	// TokenHashes are the SHA-256 hashes of the bootstrap admin tokens
	// (ADMIN scope); API tokens come from the store.
	TokenHashes [][]byte
	Now         func() time.Time
	// Audit receives one event per administrative change.
	Audit *slog.Logger
	// Dev allows plain-http challenge URLs off loopback (scepca serve --dev).
	Dev bool
	// Sealer encrypts secrets scepca must use later (Intune client secret,
	// managementHint) under the key-encryption key; *ca.KEK implements it.
	Sealer Sealer
	// Intune runs test connections of INTUNE integrations; cmd passes the
	// validator the SCEP service uses. Default: one built on Sealer.
	Intune IntuneTester
	// Attestation serves /api/v1/attestation/* and is told when trust
	// changes (attestation.go); without it those routes answer 503.
	Attestation Attestation

	// TokenCacheTTL is how long a validated API token is trusted without
	// reading the store; default DefaultTokenCacheTTL.
	TokenCacheTTL time.Duration
	// CA rotates our intermediate (cas_rotate.go); *ca.Authority. Without
	// it the rotation routes answer 503.
	CA CALifecycle
	// Backup serves GET /api/v1/backup (backup.go); without it (etcd) the
	// route answers 501.
	Backup Backup
}

// Sealer encrypts and decrypts small secrets with AES-GCM; aad binds a
// ciphertext to its record (e.g. the integration ID).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// API is the admin REST API.
type API struct {
	store     stores
	publicURL string
	auth      *authenticator
	now       func() time.Time
	audit     *slog.Logger
	dev       bool
	sealer    Sealer
	intune    IntuneTester
	attest    Attestation
	ca        CALifecycle
	lifecycle *attest.Lifecycle
	backupTo  Backup
}

// New validates cfg and returns the API.
func New(cfg Config) (*API, error) {
	if cfg.Store == nil {
		return nil, errors.New("admin: Store is required")
	}
	if len(cfg.TokenHashes) == 0 {
		return nil, errors.New("admin: at least one token is required")
	}
	a := &API{
		store:     cfg.Store,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		now:       cfg.Now,
		audit:     cfg.Audit,
		dev:       cfg.Dev,
		sealer:    cfg.Sealer,
		intune:    cfg.Intune,
		attest:    cfg.Attestation,
		ca:        cfg.CA,
		backupTo:  cfg.Backup,
	}
	if err := a.defaultIntune(); err != nil {
		return nil, err
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.audit == nil {
		a.audit = slog.New(slog.DiscardHandler)
	}
	lc, err := attest.NewLifecycle(a.store, a.now, a.audit)
	if err != nil {
		return nil, err
	}
	a.lifecycle = lc
	a.auth = &authenticator{bootstrap: cfg.TokenHashes, tokens: cfg.Store, now: a.now, ttl: cfg.TokenCacheTTL, cache: map[string]cachedToken{}}
	if a.auth.ttl <= 0 {
		a.auth.ttl = DefaultTokenCacheTTL
	}
	return a, nil
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one pattern of the API with its handler and the token scopes
// that reach it; a public route (the OpenAPI document) takes no token.
type route struct {
	pattern string
	handler handlerFunc
	scopes  []string
	public  bool
}

// routes is the API's route table: Register serves it and the OpenAPI
// test checks admin/openapi.json against it. A route needs an ADMIN token
// unless verifyRoutes lets VERIFY tokens in too.
func (a *API) routes() []route {
	handlers := map[string]handlerFunc{
		"POST /api/v1/device-integrations":                             a.createIntegration,
		"GET /api/v1/device-integrations":                              a.listIntegrations,
		"GET /api/v1/device-integrations/{id}":                         a.getIntegration,
		"POST /api/v1/device-integrations/{id}/lifecycle/reset-secret": a.resetSecret,
		"POST /api/v1/device-integrations/{id}/test":                   a.testIntegration,
		"POST /api/v1/device-integrations/{id}/lifecycle/enable":       a.enableIntegration,
		"POST /api/v1/device-integrations/{id}/lifecycle/disable":      a.disableIntegration,
		"DELETE /api/v1/device-integrations/{id}":                      a.deleteIntegration,
		"GET /api/v1/devices":                                          a.listDevices,
		"GET /api/v1/devices/{id}":                                     a.getDevice,
		"POST /api/v1/devices/{id}/lifecycle/suspend":                  a.deviceLifecycle(deviceSuspend),
		"POST /api/v1/devices/{id}/lifecycle/unsuspend":                a.deviceLifecycle(deviceUnsuspend),
		"POST /api/v1/devices/{id}/lifecycle/deactivate":               a.deviceLifecycle(deviceDeactivate),
		"POST /api/v1/devices/{id}/lifecycle/activate":                 a.deviceLifecycle(deviceActivate),
		"DELETE /api/v1/devices/{id}":                                  a.deviceLifecycle(deviceDelete),
		"PUT /api/v1/device-integrations/{id}/intune":                  a.updateIntune,
		"GET /api/v1/certificate-authorities":                          a.listCAs,
		"GET /api/v1/certificate-authorities/{id}/cert":                a.getCACert,
		"POST /api/v1/certificate-authorities":                         a.uploadCA,
		"DELETE /api/v1/certificate-authorities/{id}":                  a.deleteCA,
		"POST /api/v1/certificate-authorities/rotate":                  a.rotateCA,
		"POST /api/v1/certificate-authorities/{id}/lifecycle/activate": a.activateCA,
		"POST /api/v1/attestation/nonces":                              a.attestationNonce,
		"POST /api/v1/attestation/verify":                              a.attestationVerify,
		"GET /api/v1/certificates":                                     a.listCertificates,
		"GET /api/v1/certificates/{serial}":                            a.getCertificate,
		"POST /api/v1/certificates/{serial}/revoke":                    a.postRevoke,
		"POST /api/v1/certificates/{serial}/unhold":                    a.postUnhold,
		"GET /api/v1/backup":                                           a.backup,
		"GET /api/v1/logs":                                             a.listLogs,
		"POST /api/v1/tokens":                                          a.createToken,
		"GET /api/v1/tokens":                                           a.listTokens,
		"DELETE /api/v1/tokens/{id}":                                   a.deleteToken,
	}
	// verifyRoutes are the routes a VERIFY token reaches (the verifier);
	// every other route, and any route added above, needs ADMIN.
	verifyRoutes := map[string]bool{
		"POST /api/v1/attestation/nonces": true,
		"POST /api/v1/attestation/verify": true,
	}
	out := make([]route, 0, len(handlers)+1)
	for pattern, h := range handlers {
		scopes := []string{store.ScopeAdmin}
		if verifyRoutes[pattern] {
			scopes = append(scopes, store.ScopeVerify)
		}
		out = append(out, route{pattern: pattern, handler: h, scopes: scopes})
	}
	// The OpenAPI document holds no secrets: integrators fetch it without
	// a token to generate clients.
	out = append(out, route{pattern: "GET " + OpenAPIPath, handler: serveOpenAPI, public: true})
	return out
}

// Register adds the API routes to mux, each behind the bearer-token check
// of its scopes, except the public OpenAPI document.
func (a *API) Register(mux *http.ServeMux) {
	for _, rt := range a.routes() {
		if rt.public {
			mux.Handle(rt.pattern, a.wrap(rt.handler))
			continue
		}
		mux.Handle(rt.pattern, a.authorize(rt.scopes, a.wrap(rt.handler)))
	}
	// Anything else under /api/ is a JSON 404, not the mux's text one.
	mux.Handle("/api/", a.authorize([]string{store.ScopeAdmin}, a.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return problemf(http.StatusNotFound, "no such API route: %s %s", r.Method, r.URL.Path)
	})))
}

func (a *API) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeProblem(w, r, err)
		}
	})
}
