// Package intunefake is the strict in-process stand-in for Entra ID,
// Microsoft Graph and Intune's SCEP validation service that every Intune
// test runs against (PROTOCOLS.md §3.9). One httptest.Server plays all
// three roles; point an integration's authorityUrl and graphUrl at URL.
//
// It is as strict as the contract: a request whose method, headers, token
// scope, form or JSON fields, or base64 DER CSR differ from PROTOCOLS.md §3
// is answered 400 and recorded as a violation, and Start fails the test at
// cleanup when any was recorded. Runtime conditions the real services
// produce (a wrong secret, a refused challenge, a 500, a 403, a slow reply)
// are scripted, not violations. It defines its own wire types instead of
// sharing the client's, so a renamed field cannot pass unnoticed.
//
// It logs nothing: recorded requests (which hold the client secret and
// bearer tokens) are only returned to the test that asks.
package intunefake

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Contract literals, spelled out here independently of the client.
const (
	GraphScope  = "https://graph.microsoft.com/.default"
	IntuneScope = "https://api.manage.microsoft.com//.default"
	APIVersion  = "2018-02-20"
	// ServicePath is where discovery says the SCEP validation service is.
	ServicePath   = "/RACerts/ScepRequestValidationFEService/Gateway/StatelessScepRequestValidationService"
	discoveryPath = "/v1.0/servicePrincipals/appId=0000000a-0000-0000-c000-000000000000/endpoints"

	ActionValidate = "validateRequest"
	ActionSuccess  = "successNotification"
	ActionFailure  = "failureNotification"

	// CodeDeserialization is what validateRequest answers for a challenge
	// the fake was not told to accept.
	CodeDeserialization = "ChallengeDeserializationError"
)

// Codes are Intune's error codes (IntuneScepServiceException) other than
// Success, plus BadTenantIdInChallenge seen outside the enum (PROTOCOLS.md §3.6).
var Codes = []string{
	"Unknown", "CertificateRequestDecodingFailed", "ChallengePasswordMissing",
	"ChallengeDeserializationError", "ChallengeDecryptionError", "ChallengeDecodingError",
	"ChallengeInvalidTimestamp", "ChallengeExpired", "SubjectNameMissing", "SubjectNameMismatch",
	"SubjectAltNameMissing", "SubjectAltNameMismatch", "KeyUsageMismatch", "KeyLengthMismatch",
	"EnhancedKeyUsageMissing", "EnhancedKeyUsageMismatch", "AadKeyIdentifierListMissing",
	"RegisteredKeyMismatch", "SigningCertThumbprintMismatch", "ScepProfileNoLongerTargetedToTheClient",
	"SignatureValidationFailed", "BadCertificateRequestIdInChallenge", "BadDeviceIdInChallenge",
	"BadUserIdInChallenge", "BadTenantIdInChallenge",
}

// Reply scripts one answer of a ScepActions call.
type Reply struct {
	// Code is Intune's code, answered with HTTP 200; "" means Success.
	Code string
	// Description is the errorDescription of a refusal.
	Description string
	// ODataContext adds "@odata.context" as the real service does.
	ODataContext bool
	// Status, when not 0 or 200, answers that status with an
	// {"error":{"code","message"}} body instead.
	Status int
	// Body, when set, is sent verbatim (with Status, default 200).
	Body string
	// Block holds the reply until the request's context ends (the
	// client's timeout), so timeouts are tested without sleeping.
	Block bool
}

// Refuse is a refusal with code, answered with HTTP 200.
func Refuse(code string) Reply { return Reply{Code: code, Description: "refused by the fake: " + code} }

// BadTenant is the refusal of MS-IRA #129, with @odata.context.
func BadTenant() Reply {
	return Reply{Code: "BadTenantIdInChallenge", ODataContext: true,
		Description: "Failed to parse the tenant id in the challenge.tenantId in challenge does not match tenantId from security token."}
}

// Status is a non-2xx answer.
func Status(code int) Reply { return Reply{Status: code} }

// Blocking is a reply that never comes.
func Blocking() Reply { return Reply{Block: true} }

// Config configures a fake; zero fields get defaults.
type Config struct {
	Tenant       string // default "contoso.onmicrosoft.com"
	ClientID     string // default a fixed GUID
	ClientSecret string // default a random secret
	// ExpiresIn is the tokens' expires_in; default 3599.
	ExpiresIn int
}

// SuccessNotification is a decoded successNotification body.
type SuccessNotification struct {
	TransactionID                string `json:"transactionId"`
	CertificateRequest           string `json:"certificateRequest"`
	CertificateThumbprint        string `json:"certificateThumbprint"`
	CertificateSerialNumber      string `json:"certificateSerialNumber"`
	CertificateExpirationDateUtc string `json:"certificateExpirationDateUtc"`
	IssuingCertificateAuthority  string `json:"issuingCertificateAuthority"`
	CallerInfo                   string `json:"callerInfo"`
	CAConfiguration              string `json:"caConfiguration"`
	CertificateAuthority         string `json:"certificateAuthority"`
}

// FailureNotification is a decoded failureNotification body.
type FailureNotification struct {
	TransactionID      string `json:"transactionId"`
	CertificateRequest string `json:"certificateRequest"`
	HResult            int64  `json:"hResult"`
	ErrorDescription   string `json:"errorDescription"`
	CallerInfo         string `json:"callerInfo"`
}

// ValidateRequest is a decoded validateRequest body.
type ValidateRequest struct {
	TransactionID      string `json:"transactionId"`
	CertificateRequest string `json:"certificateRequest"`
	CallerInfo         string `json:"callerInfo"`
}

// Recorded is one request as the fake received it. It holds the secret
// and tokens: never log it.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Server is a running fake.
type Server struct {
	// URL is the base URL of all three roles (authority, Graph, Intune).
	URL string
	cfg Config
	srv *httptest.Server

	closing   chan struct{}
	closeOnce sync.Once

	mu              sync.Mutex
	scripts         map[string]Reply // "action\x00tx:<id>" or "action\x00ch:<challenge>"
	accepted        map[string]bool
	tokenReply      map[string]*Reply // scope ("" = any) → scripted answer
	discoveryStatus int
	noSCEPProvider  bool
	roles           map[string][]string
	tokens          map[string]string // access token → scope
	validated       map[string]string // transactionId → certificateRequest of a Success validate
	tokenCount      map[string]int
	discoveryCount  int
	actionCount     map[string]int
	requests        []Recorded
	violations      []string
	validates       []ValidateRequest
	successes       []SuccessNotification
	failures        []FailureNotification
}

// Start starts a fake for tb; at cleanup it stops and fails tb if any
// request broke the contract.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s := New(cfg)
	tb.Cleanup(func() {
		s.Close()
		for _, v := range s.Violations() {
			tb.Errorf("intunefake: contract violation: %s", v)
		}
	})
	return s
}

// New starts a fake; Close stops it.
func New(cfg Config) *Server {
	if cfg.Tenant == "" {
		cfg.Tenant = "contoso.onmicrosoft.com"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "6a1f1c3e-5b7d-4e2a-9c1b-2f3e4d5c6b7a"
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = "fake~" + randomHex(16)
	}
	if cfg.ExpiresIn == 0 {
		cfg.ExpiresIn = 3599
	}
	s := &Server{
		cfg:         cfg,
		closing:     make(chan struct{}),
		scripts:     map[string]Reply{},
		accepted:    map[string]bool{},
		tokens:      map[string]string{},
		validated:   map[string]string{},
		tokenCount:  map[string]int{},
		tokenReply:  map[string]*Reply{},
		actionCount: map[string]int{},
		roles: map[string][]string{
			GraphScope:  {"Application.Read.All"},
			IntuneScope: {"scep_challenge_provider"},
		},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close unblocks blocked replies and stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.srv.Close()
	})
}

// Tenant, ClientID and ClientSecret are the credentials the fake accepts.
func (s *Server) Tenant() string       { return s.cfg.Tenant }
func (s *Server) ClientID() string     { return s.cfg.ClientID }
func (s *Server) ClientSecret() string { return s.cfg.ClientSecret }

// Accept makes validateRequest answer Success for CSRs whose
// challengePassword is challenge (unless a script says otherwise).
func (s *Server) Accept(challenge string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted[challenge] = true
}

// Script sets the reply of action for transactionID.
func (s *Server) Script(transactionID, action string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[action+"\x00tx:"+transactionID] = r
}

// ScriptChallenge sets the reply of action for CSRs carrying challenge
// (for clients whose transactionID the test does not choose).
func (s *Server) ScriptChallenge(challenge, action string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[action+"\x00ch:"+challenge] = r
}

// FailTokens makes the token endpoint answer r (e.g. TokenFailure) for
// scope, or for every scope when scope is ""; nil restores normal service.
func (s *Server) FailTokens(scope string, r *Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenReply[scope] = r
}

// SetDiscoveryStatus makes discovery answer status (e.g. 403, 500); 0
// restores normal service.
func (s *Server) SetDiscoveryStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discoveryStatus = status
}

// SetSCEPProvider lists or hides ScepRequestValidationFEService in discovery.
func (s *Server) SetSCEPProvider(listed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noSCEPProvider = !listed
}

// SetRoles sets the roles claim of tokens minted from now on for scope.
func (s *Server) SetRoles(scope string, roles []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[scope] = roles
}

// RevokeTokens invalidates every token minted so far: their next use gets
// 401, as a token minted before consent or after a secret's removal would.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// TokenRequests counts successful and failed token requests for scope.
func (s *Server) TokenRequests(scope string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCount[scope]
}

// DiscoveryRequests counts discovery requests.
func (s *Server) DiscoveryRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discoveryCount
}

// ActionRequests counts ScepActions calls of action.
func (s *Server) ActionRequests(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actionCount[action]
}

// Validates, Successes and Failures return the decoded bodies received.
func (s *Server) Validates() []ValidateRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.validates)
}

func (s *Server) Successes() []SuccessNotification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.successes)
}

func (s *Server) Failures() []FailureNotification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.failures)
}

// Requests returns every request received, in order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Violations returns the contract violations seen so far.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// violation records a contract violation and answers 400.
func (s *Server) violation(w http.ResponseWriter, r *http.Request, format string, args ...any) {
	msg := r.Method + " " + r.URL.Path + ": " + fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.violations = append(s.violations, msg)
	s.mu.Unlock()
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "FakeContractViolation", "message": msg}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.violation(w, r, "unreadable body: %v", err)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	s.mu.Unlock()

	switch {
	case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		s.token(w, r, body)
	case r.URL.Path == discoveryPath || r.URL.EscapedPath() == discoveryPath:
		s.discovery(w, r)
	case strings.HasPrefix(r.URL.Path, ServicePath+"/ScepActions/"):
		s.action(w, r, body, strings.TrimPrefix(r.URL.Path, ServicePath+"/ScepActions/"))
	default:
		s.violation(w, r, "no such endpoint")
	}
}

// token is the v2 token endpoint (PROTOCOLS.md §3.3, §3.9 item 1).
func (s *Server) token(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		s.violation(w, r, "token endpoint needs POST")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		s.violation(w, r, "Content-Type %q, want application/x-www-form-urlencoded", ct)
		return
	}
	if r.URL.RawQuery != "" {
		s.violation(w, r, "token request with a query string")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.violation(w, r, "form: %v", err)
		return
	}
	keys := slices.Sorted(maps.Keys(form))
	if want := []string{"client_id", "client_secret", "grant_type", "scope"}; !slices.Equal(keys, want) {
		s.violation(w, r, "form fields %v, want exactly %v", keys, want)
		return
	}
	for k, v := range form {
		if len(v) != 1 {
			s.violation(w, r, "form field %s given %d times", k, len(v))
			return
		}
	}
	if g := form.Get("grant_type"); g != "client_credentials" {
		s.violation(w, r, "grant_type %q, want client_credentials", g)
		return
	}
	scope := form.Get("scope")
	if scope != GraphScope && scope != IntuneScope {
		s.violation(w, r, "scope %q, want %q or %q", scope, GraphScope, IntuneScope)
		return
	}
	tenant, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/oauth2/v2.0/token")
	if !ok || strings.Contains(tenant, "/") {
		s.violation(w, r, "token path must be /{tenant}/oauth2/v2.0/token")
		return
	}

	s.mu.Lock()
	s.tokenCount[scope]++
	scripted := s.tokenReply[scope]
	if scripted == nil {
		scripted = s.tokenReply[""]
	}
	roles := s.roles[scope]
	s.mu.Unlock()

	switch {
	case scripted != nil:
		s.reply(w, r, *scripted)
		return
	case !strings.EqualFold(tenant, s.cfg.Tenant):
		oauthError(w, http.StatusBadRequest, "invalid_request", 90002, "Tenant '"+tenant+"' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
		return
	case form.Get("client_id") != s.cfg.ClientID:
		oauthError(w, http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '"+form.Get("client_id")+"' was not found in the directory '"+tenant+"'.")
		return
	case form.Get("client_secret") != s.cfg.ClientSecret:
		oauthError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+s.cfg.ClientID+"'.")
		return
	}
	tok := s.mint(scope, roles)
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": s.cfg.ExpiresIn, "ext_expires_in": s.cfg.ExpiresIn, "access_token": tok})
}

// TokenFailure is a scripted token error: the OAuth error JSON Entra ID
// answers, e.g. TokenFailure(401, "invalid_client", 7000215, "Invalid client secret provided.").
func TokenFailure(status int, code string, aadsts int, description string) *Reply {
	b, _ := json.Marshal(map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: 2024-01-01 00:00:00Z", aadsts, description, randomHex(8), randomHex(8)),
		"error_codes":       []int{aadsts},
	})
	return &Reply{Status: status, Body: string(b)}
}

func oauthError(w http.ResponseWriter, status int, code string, aadsts int, description string) {
	r := TokenFailure(status, code, aadsts, description)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, r.Body)
}

// mint makes a JWT-shaped token whose claims name its scope and roles.
func (s *Server) mint(scope string, roles []string) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"typ":"JWT","alg":"none"}`))
	claims, _ := json.Marshal(map[string]any{
		"aud": strings.TrimSuffix(scope, ".default"), "tid": s.cfg.Tenant, "appid": s.cfg.ClientID,
		"roles": roles, "fake_scope": scope, "jti": randomHex(8),
		"exp": time.Now().Add(time.Duration(s.cfg.ExpiresIn) * time.Second).Unix(),
	})
	tok := header + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString([]byte(randomHex(16)))
	s.mu.Lock()
	s.tokens[tok] = scope
	s.mu.Unlock()
	return tok
}

// bearer checks the Authorization header against want scope. It answers
// and returns false unless the token is a live one for want.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request, want string) bool {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		s.violation(w, r, "Authorization %q is not a Bearer token", redact(auth))
		return false
	}
	s.mu.Lock()
	scope, live := s.tokens[tok]
	s.mu.Unlock()
	switch {
	case !live:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid."}})
		return false
	case scope != want:
		s.mu.Lock()
		s.violations = append(s.violations, fmt.Sprintf("%s %s: token for %s, want %s", r.Method, r.URL.Path, scope, want))
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "InvalidAuthenticationToken", "message": "Invalid audience."}})
		return false
	}
	return true
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (s *Server) requestID(w http.ResponseWriter, r *http.Request) bool {
	if id := r.Header.Get("client-request-id"); !guidPattern.MatchString(id) {
		s.violation(w, r, "client-request-id %q is not a GUID", id)
		return false
	}
	return true
}

// discovery is Graph's endpoints list of the Intune service principal.
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.violation(w, r, "discovery needs GET")
		return
	}
	if !s.requestID(w, r) || !s.bearer(w, r, GraphScope) {
		return
	}
	s.mu.Lock()
	s.discoveryCount++
	status, hidden := s.discoveryStatus, s.noSCEPProvider
	s.mu.Unlock()
	switch status {
	case 0, http.StatusOK:
	case http.StatusForbidden:
		writeJSON(w, status, map[string]any{"error": map[string]string{"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}})
		return
	default:
		writeJSON(w, status, map[string]any{"error": map[string]string{"code": "generalException", "message": "scripted failure"}})
		return
	}
	endpoint := func(name, uri string) map[string]string {
		return map[string]string{"id": randomHex(4), "capability": name, "providerId": randomHex(4), "providerName": name, "providerResourceId": randomHex(4), "uri": uri}
	}
	value := []map[string]string{endpoint("PkiConnectorFEService", s.URL+"/RACerts/PkiConnectorFEService")}
	if !hidden {
		value = append(value, endpoint("ScepRequestValidationFEService", s.URL+ServicePath))
	}
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": s.URL + "/v1.0/$metadata#endpoints", "value": value})
}

var (
	thumbprintPattern = regexp.MustCompile(`^[0-9A-F]{40}$`)
	serialPattern     = regexp.MustCompile(`^[0-9A-F]+$`)
)

// action is one ScepActions call (PROTOCOLS.md §3.5, §3.9 item 3).
func (s *Server) action(w http.ResponseWriter, r *http.Request, body []byte, name string) {
	if name != ActionValidate && name != ActionSuccess && name != ActionFailure {
		s.violation(w, r, "unknown action %q", name)
		return
	}
	if r.Method != http.MethodPost {
		s.violation(w, r, "ScepActions need POST")
		return
	}
	if !s.requestID(w, r) {
		return
	}
	if v := r.Header.Get("api-version"); v != APIVersion {
		s.violation(w, r, "api-version %q, want %q", v, APIVersion)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.violation(w, r, "Content-Type %q, want application/json", ct)
		return
	}
	if ua := r.Header.Get("UserAgent"); ua == "" {
		s.violation(w, r, "no UserAgent header")
		return
	}
	if !s.bearer(w, r, IntuneScope) {
		return
	}
	wrapper := "request"
	fields := []string{"callerInfo", "certificateRequest", "transactionId"}
	switch name {
	case ActionSuccess:
		wrapper = "notification"
		fields = []string{"caConfiguration", "callerInfo", "certificateAuthority", "certificateExpirationDateUtc", "certificateRequest", "certificateSerialNumber", "certificateThumbprint", "issuingCertificateAuthority", "transactionId"}
	case ActionFailure:
		wrapper = "notification"
		fields = []string{"callerInfo", "certificateRequest", "errorDescription", "hResult", "transactionId"}
	}
	inner, err := exactObject(body, wrapper, fields)
	if err != nil {
		s.violation(w, r, "%s body: %v", name, err)
		return
	}
	var (
		txID, csrB64, callerInfo string
		challenge                string
	)
	switch name {
	case ActionValidate:
		var v ValidateRequest
		if err := strictDecode(inner, &v); err != nil {
			s.violation(w, r, "validateRequest: %v", err)
			return
		}
		txID, csrB64, callerInfo = v.TransactionID, v.CertificateRequest, v.CallerInfo
		s.mu.Lock()
		s.validates = append(s.validates, v)
		s.mu.Unlock()
	case ActionSuccess:
		var v SuccessNotification
		if err := strictDecode(inner, &v); err != nil {
			s.violation(w, r, "successNotification: %v", err)
			return
		}
		if problem := checkSuccess(v); problem != "" {
			s.violation(w, r, "successNotification: %s", problem)
			return
		}
		txID, csrB64, callerInfo = v.TransactionID, v.CertificateRequest, v.CallerInfo
		s.mu.Lock()
		validatedCSR, ok := s.validated[txID]
		s.successes = append(s.successes, v)
		s.mu.Unlock()
		if !ok || validatedCSR != csrB64 {
			s.violation(w, r, "successNotification for transaction %q without a Success validateRequest of the same CSR", txID)
			return
		}
	case ActionFailure:
		var v FailureNotification
		if err := strictDecode(inner, &v); err != nil {
			s.violation(w, r, "failureNotification: %v", err)
			return
		}
		if n := utf8.RuneCountInString(v.ErrorDescription); n == 0 || n > 255 {
			s.violation(w, r, "failureNotification: errorDescription of %d characters, want 1 to 255", n)
			return
		}
		if !utf8.ValidString(v.ErrorDescription) {
			s.violation(w, r, "failureNotification: errorDescription is not UTF-8")
			return
		}
		txID, csrB64, callerInfo = v.TransactionID, v.CertificateRequest, v.CallerInfo
		s.mu.Lock()
		s.failures = append(s.failures, v)
		s.mu.Unlock()
	}
	if txID == "" || callerInfo == "" {
		s.violation(w, r, "%s: empty transactionId or callerInfo", name)
		return
	}
	challenge, err = parseCSR(csrB64)
	if err != nil {
		s.violation(w, r, "%s: certificateRequest: %v", name, err)
		return
	}

	s.mu.Lock()
	s.actionCount[name]++
	reply, scripted := s.scripts[name+"\x00tx:"+txID]
	if !scripted {
		reply, scripted = s.scripts[name+"\x00ch:"+challenge]
	}
	if !scripted && name == ActionValidate && !s.accepted[challenge] {
		reply = Refuse(CodeDeserialization)
	}
	if name == ActionValidate && (reply.Code == "" || reply.Code == "Success") && (reply.Status == 0 || reply.Status == http.StatusOK) && reply.Body == "" && !reply.Block {
		s.validated[txID] = csrB64
	}
	s.mu.Unlock()
	s.reply(w, r, reply)
}

// reply writes a scripted reply.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, rep Reply) {
	if rep.Block {
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	}
	status := rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	if rep.Body != "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, rep.Body)
		return
	}
	if status != http.StatusOK {
		writeJSON(w, status, map[string]any{"error": map[string]string{"code": http.StatusText(status), "message": "scripted HTTP " + fmt.Sprint(status)}})
		return
	}
	code := rep.Code
	if code == "" {
		code = "Success"
	}
	out := map[string]any{"code": code, "errorDescription": rep.Description}
	if rep.ODataContext {
		out["@odata.context"] = s.URL + "/RACerts/ScepRequestValidationFEService/$metadata#microsoft.management.services.api.scepActionResult"
	}
	writeJSON(w, http.StatusOK, out)
}

// exactObject checks that body is {wrapper: {fields...}} with exactly those
// members and returns the inner object.
func exactObject(body []byte, wrapper string, fields []string) ([]byte, error) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(body, &outer); err != nil {
		return nil, err
	}
	if got := slices.Sorted(maps.Keys(outer)); !slices.Equal(got, []string{wrapper}) {
		return nil, fmt.Errorf("members %v, want exactly [%s]", got, wrapper)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(outer[wrapper], &inner); err != nil {
		return nil, fmt.Errorf("%s: %w", wrapper, err)
	}
	if got := slices.Sorted(maps.Keys(inner)); !slices.Equal(got, fields) {
		return nil, fmt.Errorf("%s members %v, want exactly %v", wrapper, got, fields)
	}
	return outer[wrapper], nil
}

// strictDecode decodes with DisallowUnknownFields, so a field of the wrong
// JSON type (a string hResult, say) is an error too.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// checkSuccess checks successNotification's formats (PROTOCOLS.md §3.5).
func checkSuccess(v SuccessNotification) string {
	switch {
	case !thumbprintPattern.MatchString(v.CertificateThumbprint):
		return fmt.Sprintf("certificateThumbprint %q is not 40 uppercase hex digits", v.CertificateThumbprint)
	case !serialPattern.MatchString(v.CertificateSerialNumber):
		return fmt.Sprintf("certificateSerialNumber %q is not uppercase hex", v.CertificateSerialNumber)
	case !strings.HasSuffix(v.CertificateExpirationDateUtc, "Z"):
		return fmt.Sprintf("certificateExpirationDateUtc %q is not UTC with Z", v.CertificateExpirationDateUtc)
	case v.IssuingCertificateAuthority == "" || v.CAConfiguration == "" || v.CertificateAuthority == "":
		return "empty issuingCertificateAuthority, caConfiguration or certificateAuthority"
	}
	if _, err := time.Parse(time.RFC3339Nano, v.CertificateExpirationDateUtc); err != nil {
		return fmt.Sprintf("certificateExpirationDateUtc: %v", err)
	}
	return ""
}

// parseCSR checks certificateRequest (std base64 of a DER PKCS#10, no line
// breaks, valid signature) and returns its challengePassword.
func parseCSR(b64 string) (string, error) {
	if strings.ContainsAny(b64, "\r\n \t") {
		return "", fmt.Errorf("base64 with whitespace")
	}
	der, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("not std base64: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return "", fmt.Errorf("not a DER PKCS#10: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return "", fmt.Errorf("signature: %w", err)
	}
	return ChallengePassword(csr)
}

// ChallengePassword returns the challengePassword attribute of csr ("" when
// absent): PrintableString, UTF8String or IA5String.
func ChallengePassword(csr *x509.CertificateRequest) (string, error) {
	in := cryptobyte.String(csr.RawTBSCertificateRequest)
	var info, subject, spki, attrs cryptobyte.String
	var version int
	var present bool
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !info.ReadASN1Integer(&version) ||
		!info.ReadASN1(&subject, cbasn1.SEQUENCE) || !info.ReadASN1(&spki, cbasn1.SEQUENCE) ||
		!info.ReadOptionalASN1(&attrs, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return "", fmt.Errorf("malformed CertificationRequestInfo")
	}
	oid := []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07} // 1.2.840.113549.1.9.7
	for !attrs.Empty() {
		var attr, id, values, value cryptobyte.String
		var tag cbasn1.Tag
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1(&id, cbasn1.OBJECT_IDENTIFIER) || !attr.ReadASN1(&values, cbasn1.SET) {
			return "", fmt.Errorf("malformed attribute")
		}
		if string(id) != string(oid) {
			continue
		}
		if !values.ReadAnyASN1(&value, &tag) {
			return "", fmt.Errorf("malformed challengePassword")
		}
		return string(value), nil
	}
	return "", nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redact keeps a header's shape without its credential.
func redact(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}
