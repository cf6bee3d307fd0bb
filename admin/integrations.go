package admin

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scepca/scepca/challenge"
	"github.com/scepca/scepca/store"
)

// IntegrationRequest creates a device integration.
type IntegrationRequest struct {
	Name          string `json:"name"`
	Platform      string `json:"platform"`
	ChallengeType string `json:"challengeType"`
	CAChain       string `json:"caChain,omitempty"`
	Renewal       bool   `json:"renewal,omitempty"`
	MinCipher     string `json:"minCipher,omitempty"`
	ValidityDays  int    `json:"validityDays,omitempty"`
	// RequireHardwareKey (DESKTOP): the attestation verifier refuses proofs
	// by this integration's certificates without valid TPM key evidence
	// (docs/attestation.md, "TPM key attestation").
	RequireHardwareKey bool `json:"requireHardwareKey,omitempty"`

	// DYNAMIC only.
	ChallengeTTLMinutes int  `json:"challengeTtlMinutes,omitempty"`
	MaxOutstanding      int  `json:"maxOutstanding,omitempty"`
	NDESEncoding        bool `json:"ndesEncoding,omitempty"`

	// INTUNE only (intune.go).
	Intune *IntuneSettings `json:"intune,omitempty"`

	// IOS and ANDROID only (attestation_mobile.go): a supplied
	// managementHint (generated when empty), and whether the verifier also
	// accepts it presented in the clear instead of its HMAC.
	ManagementHint string `json:"managementHint,omitempty"`
	AllowPlainHint bool   `json:"allowPlainHint,omitempty"`
}

// Integration is an integration as the API shows it: never with secrets,
// except SecretKey in the one creation response.
type Integration struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Platform      string    `json:"platform"`
	ChallengeType string    `json:"challengeType,omitempty"`
	Enabled       bool      `json:"enabled"`
	CreatedAt     time.Time `json:"createdAt"`
	SCEPURL       string    `json:"scepUrl,omitempty"`
	CAChain       string    `json:"caChain,omitempty"`
	Renewal       bool      `json:"renewal"`
	MinCipher     string    `json:"minCipher,omitempty"`
	ValidityDays  int       `json:"validityDays,omitempty"`
	// RequireHardwareKey (DESKTOP): proofs need TPM key evidence.
	RequireHardwareKey bool `json:"requireHardwareKey,omitempty"`

	// DYNAMIC: the challenge page and its HTTP Basic username.
	ChallengeURL        string `json:"challengeUrl,omitempty"`
	Username            string `json:"username,omitempty"`
	ChallengeTTLMinutes int    `json:"challengeTtlMinutes,omitempty"`
	MaxOutstanding      int    `json:"maxOutstanding,omitempty"`
	NDESEncoding        bool   `json:"ndesEncoding,omitempty"`

	// INTUNE: the app registration, never its client secret (intune.go).
	Intune *IntuneView `json:"intune,omitempty"`

	// IOS and ANDROID: whether a plain managementHint is accepted.
	AllowPlainHint bool `json:"allowPlainHint,omitempty"`

	// SecretKey (STATIC, IOS, ANDROID) and Password (DYNAMIC) appear only
	// in the response that creates or resets them.
	SecretKey string `json:"secretKey,omitempty"`
	Password  string `json:"password,omitempty"`
	// PreviousSecretUntil, in a reset-secret response with an overlap, is
	// when the replaced secret stops working.
	PreviousSecretUntil time.Time `json:"previousSecretUntil,omitzero"`
}

// Validate checks a creation request and fills defaults.
func (req *IntegrationRequest) Validate() error {
	req.Name = strings.TrimSpace(req.Name)
	switch {
	case req.Name == "":
		return problemf(http.StatusBadRequest, "name is required")
	case utf8.RuneCountInString(req.Name) > 100:
		return problemf(http.StatusBadRequest, "name must be at most 100 characters")
	}
	switch req.Platform {
	case store.PlatformDesktop:
		if err := req.rejectMobileFields(); err != nil {
			return err
		}
	case store.PlatformIOS, store.PlatformAndroid:
		return req.validateMobile()
	default:
		return problemf(http.StatusBadRequest, "platform must be DESKTOP, IOS or ANDROID")
	}
	switch req.ChallengeType {
	case store.ChallengeStatic, store.ChallengeDynamic, store.ChallengeIntune:
	default:
		return problemf(http.StatusBadRequest, "challengeType must be STATIC, DYNAMIC or INTUNE")
	}
	if err := req.validateIntune(); err != nil {
		return err
	}
	if req.ChallengeType != store.ChallengeDynamic && (req.ChallengeTTLMinutes != 0 || req.MaxOutstanding != 0 || req.NDESEncoding) {
		return problemf(http.StatusBadRequest, "challengeTtlMinutes, maxOutstanding and ndesEncoding apply only to DYNAMIC integrations")
	}
	if req.ChallengeTTLMinutes < 0 || req.ChallengeTTLMinutes > 24*60 {
		return problemf(http.StatusBadRequest, "challengeTtlMinutes must be between 1 and 1440 (0 for the default of 60)")
	}
	if req.MaxOutstanding < 0 || req.MaxOutstanding > 1_000_000 {
		return problemf(http.StatusBadRequest, "maxOutstanding must be between 1 and 1000000 (0 for the default of 1000)")
	}
	switch req.CAChain {
	case "":
		req.CAChain = store.CAChainIssuer
	case store.CAChainIssuer, store.CAChainIssuerAndChain:
	default:
		return problemf(http.StatusBadRequest, "caChain must be issuer or issuerAndChain")
	}
	switch req.MinCipher {
	case "":
		req.MinCipher = "des"
	case "des", "3des", "aes":
	default:
		return problemf(http.StatusBadRequest, "minCipher must be des, 3des or aes")
	}
	if req.ValidityDays < 0 || req.ValidityDays > 3650 {
		return problemf(http.StatusBadRequest, "validityDays must be between 1 and 3650 (0 for the server default)")
	}
	return nil
}

// CreateIntegration stores a new integration and returns it with its
// secret, the only time the secret is shown. Used by the API and by
// `scepca serve --dev`.
func (a *API) CreateIntegration(ctx context.Context, req IntegrationRequest) (*Integration, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if isMobile(req.Platform) {
		return a.createMobile(ctx, req)
	}
	if req.ChallengeType == store.ChallengeDynamic && !a.dev && !a.httpsOrLoopback() {
		return nil, problemf(http.StatusBadRequest, "a DYNAMIC integration needs an https public URL: its challenge URL carries a password (plain http is allowed only on loopback or with --dev)")
	}
	if req.ChallengeType == store.ChallengeIntune && a.sealer == nil {
		return nil, errors.New("admin: an INTUNE integration needs the key-encryption key (Config.Sealer)")
	}
	secret, hash, err := newSecret()
	if err != nil {
		return nil, err
	}
	if req.ChallengeType == store.ChallengeIntune {
		secret, hash = "", nil // Intune decides; there is no challenge secret of ours
	}
	now := a.now().UTC()
	in := &store.Integration{
		Name:          req.Name,
		Platform:      req.Platform,
		ChallengeType: req.ChallengeType,
		Enabled:       true,
		CreatedAt:     now,
		UpdatedAt:     now,
		SecretHash:    hash,
		CAChain:       req.CAChain,
		Renewal:       req.Renewal,
		MinCipher:     req.MinCipher,
		ValidityDays:  req.ValidityDays,

		RequireHardwareKey:  req.RequireHardwareKey,
		ChallengeTTLMinutes: req.ChallengeTTLMinutes,
		MaxOutstanding:      req.MaxOutstanding,
		NDESEncoding:        req.NDESEncoding,
	}
	for range 3 {
		if in.ID, err = newID(); err != nil {
			return nil, err
		}
		if in.ChallengeType == store.ChallengeDynamic {
			in.Username = "scepca-" + in.ID
		}
		if in.ChallengeType == store.ChallengeIntune {
			// Sealed per ID: the ciphertext opens only for this integration.
			if err := a.setIntune(in, req.Intune); err != nil {
				return nil, err
			}
		}
		err = a.store.CreateIntegration(ctx, in)
		if !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("admin: create integration: %w", err)
	}
	a.audit.InfoContext(ctx, "device.integration.create", "target", in.ID, "name", in.Name, "challenge", in.ChallengeType, "outcome", "success")
	if in.ChallengeType == store.ChallengeIntune {
		return a.view(in), nil // its one secret is the admin's own, never echoed
	}
	return a.withSecret(in, secret), nil
}

// newSecret generates a secret and its hash.
func newSecret() (challenge.Secret, []byte, error) {
	secret, err := challenge.GenerateSecret(challenge.SecretLength)
	if err != nil {
		return "", nil, err
	}
	hash, err := challenge.HashSecret(secret)
	return secret, hash, err
}

// withSecret is the view of in with its freshly made secret: the static
// secret key, or the challenge page password.
func (a *API) withSecret(in *store.Integration, secret challenge.Secret) *Integration {
	out := a.view(in)
	if in.ChallengeType == store.ChallengeDynamic {
		out.Password = secret.Reveal()
	} else {
		out.SecretKey = secret.Reveal()
	}
	return out
}

// httpsOrLoopback reports whether URLs built from the public URL are safe
// to carry a password: https, or http to a loopback address.
func (a *API) httpsOrLoopback() bool {
	u, err := url.Parse(a.publicURL)
	if err != nil {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return u.Scheme == "http" && (u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()))
}

// MaxOverlap bounds a reset's overlap window: the replaced secret may keep
// working for at most 7 days.
const MaxOverlap = 7 * 24 * time.Hour

// ResetSecretRequest is the optional body of reset-secret.
type ResetSecretRequest struct {
	// OverlapSeconds keeps the replaced secret working this long (at most
	// MaxOverlap), so UEM profiles can be updated without failed
	// enrollments or sign-ins; 0 (the default) ends it at once.
	OverlapSeconds int64 `json:"overlapSeconds"`
}

// ResetSecret replaces an integration's secret (static secret key,
// challenge page password or managementHint) and returns the new one,
// shown this once. The old secret stops working at once, or after overlap
// when overlap > 0; a reset replaces any earlier overlap, so at most two
// secrets work at a time.
func (a *API) ResetSecret(ctx context.Context, id string, overlap time.Duration) (*Integration, error) {
	if overlap < 0 || overlap > MaxOverlap {
		return nil, problemf(http.StatusBadRequest, "overlapSeconds must be between 0 and %d (7 days)", int64(MaxOverlap/time.Second))
	}
	in, err := a.integration(ctx, id)
	if err != nil {
		return nil, err
	}
	if isMobile(in.Platform) {
		return a.resetHint(ctx, in, overlap)
	}
	switch in.ChallengeType {
	case store.ChallengeStatic, store.ChallengeDynamic:
	default:
		return nil, problemf(http.StatusConflict, "integration %q (%s) has no secret to reset", id, in.ChallengeType)
	}
	secret, hash, err := newSecret()
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	in.PreviousSecretHash, in.PreviousSecretUntil = nil, time.Time{}
	if overlap > 0 {
		in.PreviousSecretHash, in.PreviousSecretUntil = in.SecretHash, now.Add(overlap)
	}
	in.SecretHash = hash
	in.UpdatedAt = now
	if err := a.store.UpdateIntegration(ctx, in); err != nil {
		return nil, fmt.Errorf("admin: reset secret: %w", err)
	}
	a.audit.InfoContext(ctx, "device.integration.reset_secret", "target", in.ID, "overlap_seconds", int64(overlap/time.Second), "outcome", "success")
	out := a.withSecret(in, secret)
	out.PreviousSecretUntil = in.PreviousSecretUntil
	return out, nil
}

func (a *API) resetSecret(w http.ResponseWriter, r *http.Request) error {
	var req ResetSecretRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	if req.OverlapSeconds < 0 || req.OverlapSeconds > int64(MaxOverlap/time.Second) {
		return problemf(http.StatusBadRequest, "overlapSeconds must be between 0 and %d (7 days)", int64(MaxOverlap/time.Second))
	}
	out, err := a.ResetSecret(r.Context(), r.PathValue("id"), time.Duration(req.OverlapSeconds)*time.Second)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, out)
}

// integration loads integration id for the API: 404 if absent or deleted.
func (a *API) integration(ctx context.Context, id string) (*store.Integration, error) {
	in, err := a.store.GetIntegration(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && in.Deleted() {
		return nil, problemf(http.StatusNotFound, "no integration %q", id)
	}
	if err != nil {
		return nil, err
	}
	return in, nil
}

// newID returns a random, URL-safe integration ID (80 bits).
func newID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "int" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

// SCEPURL is the URL a UEM administrator pastes into the SCEP payload.
func (a *API) SCEPURL(id string) string {
	return a.publicURL + "/scep/" + id
}

func (a *API) view(in *store.Integration) *Integration {
	v := &Integration{
		ID:            in.ID,
		Name:          in.Name,
		Platform:      in.Platform,
		ChallengeType: in.ChallengeType,
		Enabled:       in.Enabled,
		CreatedAt:     in.CreatedAt,
		CAChain:       in.CAChain,
		Renewal:       in.Renewal,
		MinCipher:     in.MinCipher,
		ValidityDays:  in.ValidityDays,

		RequireHardwareKey: in.RequireHardwareKey,
	}
	if in.Platform == store.PlatformDesktop {
		v.SCEPURL = a.SCEPURL(in.ID)
	}
	if in.ChallengeType == store.ChallengeDynamic {
		v.ChallengeURL = a.publicURL + challenge.ChallengePath(in.ID)
		v.Username = in.Username
		v.ChallengeTTLMinutes = in.ChallengeTTLMinutes
		if v.ChallengeTTLMinutes == 0 {
			v.ChallengeTTLMinutes = int(challenge.DefaultChallengeTTL.Minutes())
		}
		v.MaxOutstanding = in.MaxOutstanding
		if v.MaxOutstanding == 0 {
			v.MaxOutstanding = challenge.DefaultMaxOutstanding
		}
		v.NDESEncoding = in.NDESEncoding
	}
	if in.ChallengeType == store.ChallengeIntune {
		v.Intune = intuneView(in)
	}
	if v.CAChain == "" {
		v.CAChain = store.CAChainIssuer
	}
	if v.MinCipher == "" {
		v.MinCipher = "des"
	}
	viewMobile(in, v)
	return v
}

func (a *API) createIntegration(w http.ResponseWriter, r *http.Request) error {
	var req IntegrationRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	out, err := a.CreateIntegration(r.Context(), req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/device-integrations/"+out.ID)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) listIntegrations(w http.ResponseWriter, r *http.Request) error {
	list, err := a.store.ListIntegrations(r.Context())
	if err != nil {
		return err
	}
	out := make([]*Integration, 0, len(list))
	for _, in := range list {
		if !in.Deleted() {
			out = append(out, a.view(in))
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getIntegration(w http.ResponseWriter, r *http.Request) error {
	in, err := a.integration(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.view(in))
}
