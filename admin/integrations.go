package admin

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
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
	CAChain       string    `json:"caChain"`
	Renewal       bool      `json:"renewal"`
	MinCipher     string    `json:"minCipher"`
	ValidityDays  int       `json:"validityDays,omitempty"`
	// SecretKey is the static challenge secret, present only when created.
	SecretKey string `json:"secretKey,omitempty"`
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
	case store.PlatformIOS, store.PlatformAndroid:
		return problemf(http.StatusBadRequest, "platform %s is not supported yet: only DESKTOP integrations can be created", req.Platform)
	default:
		return problemf(http.StatusBadRequest, "platform must be DESKTOP, IOS or ANDROID")
	}
	switch req.ChallengeType {
	case store.ChallengeStatic:
	case store.ChallengeDynamic, store.ChallengeIntune:
		return problemf(http.StatusBadRequest, "challengeType %s is not supported yet: use STATIC", req.ChallengeType)
	default:
		return problemf(http.StatusBadRequest, "challengeType must be STATIC, DYNAMIC or INTUNE")
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
	secret, err := challenge.GenerateSecret(challenge.SecretLength)
	if err != nil {
		return nil, err
	}
	hash, err := challenge.HashSecret(secret)
	if err != nil {
		return nil, err
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
	}
	for range 3 {
		if in.ID, err = newID(); err != nil {
			return nil, err
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
	out := a.view(in)
	out.SecretKey = secret.Reveal()
	return out, nil
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
	}
	if in.Platform == store.PlatformDesktop {
		v.SCEPURL = a.SCEPURL(in.ID)
	}
	if v.CAChain == "" {
		v.CAChain = store.CAChainIssuer
	}
	if v.MinCipher == "" {
		v.MinCipher = "des"
	}
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
		out = append(out, a.view(in))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getIntegration(w http.ResponseWriter, r *http.Request) error {
	in, err := a.store.GetIntegration(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, "no integration %q", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.view(in))
}
