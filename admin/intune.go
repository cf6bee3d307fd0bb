package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/scepca/scepca/challenge/intune"
	"github.com/scepca/scepca/store"
)

// INTUNE integrations (PROTOCOLS.md §3, DESIGN.md §4): creation with the
// Entra ID app registration, replacement of its settings (a rotated client
// secret), and test connection. The client secret is sealed under the
// key-encryption key with the integration ID as additional data, and no
// response or log line ever carries it.

// IntuneSettings is the "intune" member that creates an INTUNE integration
// and the body that replaces its settings.
type IntuneSettings struct {
	// Tenant is "<name>.onmicrosoft.com" or the Directory (tenant) ID.
	Tenant string `json:"tenant"`
	// ClientID is the app registration's Application (client) ID.
	ClientID string `json:"clientId"`
	// ClientSecret is the value of one of the app's client secrets.
	ClientSecret intune.ClientSecret `json:"clientSecret"`
	// AuthorityURL and GraphURL override the Entra ID and Microsoft Graph
	// base URLs (sovereign clouds); https, or http to loopback only.
	AuthorityURL string `json:"authorityUrl,omitempty"`
	GraphURL     string `json:"graphUrl,omitempty"`
}

// IntuneView is what the API shows of an INTUNE integration's settings:
// never the client secret, sealed or not.
type IntuneView struct {
	Tenant       string `json:"tenant"`
	ClientID     string `json:"clientId"`
	AuthorityURL string `json:"authorityUrl"`
	GraphURL     string `json:"graphUrl"`
}

// IntuneTester runs a test connection for an INTUNE integration;
// *intune.Validator implements it.
type IntuneTester interface {
	Test(ctx context.Context, in *store.Integration) intune.Diagnosis
}

// defaultIntune builds the tester when cmd gave none but a Sealer.
func (a *API) defaultIntune() error {
	if a.intune != nil || a.sealer == nil {
		return nil
	}
	v, err := intune.New(intune.Config{Opener: a.sealer})
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	a.intune = v
	return nil
}

// validateIntune checks the INTUNE-only part of a creation request.
func (req *IntegrationRequest) validateIntune() error {
	if req.ChallengeType != store.ChallengeIntune {
		if req.Intune != nil {
			return problemf(http.StatusBadRequest, "intune applies only to INTUNE integrations")
		}
		return nil
	}
	switch {
	case req.Platform != store.PlatformDesktop:
		return problemf(http.StatusBadRequest, "challengeType INTUNE applies only to DESKTOP integrations")
	case req.Intune == nil:
		return problemf(http.StatusBadRequest, "an INTUNE integration needs intune: {tenant, clientId, clientSecret} of the Entra ID app registration")
	case req.Renewal:
		return problemf(http.StatusBadRequest, "renewal is not available for INTUNE integrations: Intune renews a certificate by enrolling again with a new challenge, which Intune validates")
	}
	return req.Intune.normalize()
}

// normalize checks the settings and puts them in canonical form. Errors
// never quote the secret.
func (s *IntuneSettings) normalize() error {
	var err error
	if s.Tenant, err = intune.NormalizeTenant(s.Tenant); err != nil {
		return problemf(http.StatusBadRequest, "intune.%v", err)
	}
	if s.ClientID, err = intune.NormalizeClientID(s.ClientID); err != nil {
		return problemf(http.StatusBadRequest, "intune.%v", err)
	}
	if err := intune.CheckClientSecret(s.ClientSecret); err != nil {
		return problemf(http.StatusBadRequest, "intune.%v", err)
	}
	if s.AuthorityURL, err = intune.NormalizeBaseURL(s.AuthorityURL, intune.DefaultAuthorityURL); err != nil {
		return problemf(http.StatusBadRequest, "intune.authorityUrl: %v", err)
	}
	if s.GraphURL, err = intune.NormalizeBaseURL(s.GraphURL, intune.DefaultGraphURL); err != nil {
		return problemf(http.StatusBadRequest, "intune.graphUrl: %v", err)
	}
	return nil
}

// setIntune stores normalized settings in in, the secret sealed for in.ID.
func (a *API) setIntune(in *store.Integration, s *IntuneSettings) error {
	if a.sealer == nil {
		return errors.New("admin: no key-encryption key to seal the Intune client secret")
	}
	ct, err := a.sealer.Seal([]byte(s.ClientSecret.Reveal()), []byte(in.ID))
	if err != nil {
		return fmt.Errorf("admin: seal Intune client secret: %w", err)
	}
	in.IntuneTenant = s.Tenant
	in.IntuneClientID = s.ClientID
	in.IntuneSecretCiphertext = ct
	in.IntuneAuthorityURL = s.AuthorityURL
	in.IntuneGraphURL = s.GraphURL
	return nil
}

// intuneView is the API view of in's Intune settings.
func intuneView(in *store.Integration) *IntuneView {
	v := &IntuneView{Tenant: in.IntuneTenant, ClientID: in.IntuneClientID, AuthorityURL: in.IntuneAuthorityURL, GraphURL: in.IntuneGraphURL}
	if v.AuthorityURL == "" {
		v.AuthorityURL = intune.DefaultAuthorityURL
	}
	if v.GraphURL == "" {
		v.GraphURL = intune.DefaultGraphURL
	}
	return v
}

// intuneIntegration loads an INTUNE integration: 404 if absent, 409 if of
// another type.
func (a *API) intuneIntegration(ctx context.Context, id string) (*store.Integration, error) {
	in, err := a.integration(ctx, id)
	if err != nil {
		return nil, err
	}
	if in.ChallengeType != store.ChallengeIntune {
		return nil, problemf(http.StatusConflict, "integration %q is %s: test connection and intune settings apply to INTUNE integrations", id, in.ChallengeType)
	}
	return in, nil
}

// UpdateIntune replaces an INTUNE integration's settings, client secret
// included (the secret rotation every Entra ID secret needs before it
// expires). The next enrollment uses them.
func (a *API) UpdateIntune(ctx context.Context, id string, s IntuneSettings) (*Integration, error) {
	in, err := a.intuneIntegration(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.normalize(); err != nil {
		return nil, err
	}
	if err := a.setIntune(in, &s); err != nil {
		return nil, err
	}
	in.UpdatedAt = a.now().UTC()
	if err := a.store.UpdateIntegration(ctx, in); err != nil {
		return nil, fmt.Errorf("admin: update Intune settings: %w", err)
	}
	a.audit.InfoContext(ctx, "device.integration.update_intune", "target", in.ID, "tenant", in.IntuneTenant, "client_id", in.IntuneClientID, "outcome", "success")
	return a.view(in), nil
}

func (a *API) updateIntune(w http.ResponseWriter, r *http.Request) error {
	var s IntuneSettings
	if err := decodeJSON(r, &s); err != nil {
		return err
	}
	out, err := a.UpdateIntune(r.Context(), r.PathValue("id"), s)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// testIntegration runs a test connection: fresh tokens for Graph and
// Intune and a service discovery. It answers 200 with the diagnosis
// whatever it found; the diagnosis says what to fix.
func (a *API) testIntegration(w http.ResponseWriter, r *http.Request) error {
	in, err := a.intuneIntegration(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if a.intune == nil {
		return problemf(http.StatusServiceUnavailable, "Intune test connection is not available: the server has no key-encryption key")
	}
	d := a.intune.Test(r.Context(), in)
	outcome := "success"
	if !d.OK {
		outcome = "failure"
	}
	a.audit.InfoContext(r.Context(), "device.integration.test", "target", in.ID, "problem", d.Problem, "outcome", outcome)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, d)
}
