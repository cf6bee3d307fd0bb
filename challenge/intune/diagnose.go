package intune

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/scepca/scepca/store"
)

// Problems a test connection names (Diagnosis.Problem), each with the fix
// an Intune administrator needs (PROTOCOLS.md §3.2, §3.8).
const (
	ProblemNotConfigured                = "NOT_CONFIGURED"
	ProblemInvalidClientSecret          = "INVALID_CLIENT_SECRET"
	ProblemExpiredClientSecret          = "EXPIRED_CLIENT_SECRET"
	ProblemApplicationNotFound          = "APPLICATION_NOT_FOUND"
	ProblemTenantNotFound               = "TENANT_NOT_FOUND"
	ProblemIntuneNotInTenant            = "INTUNE_NOT_IN_TENANT"
	ProblemTokenRefused                 = "TOKEN_REFUSED"
	ProblemUnreachable                  = "UNREACHABLE"
	ProblemMissingApplicationReadAll    = "MISSING_APPLICATION_READ_ALL"
	ProblemMissingScepChallengeProvider = "MISSING_SCEP_CHALLENGE_PROVIDER"
	ProblemServiceNotFound              = "SERVICE_NOT_FOUND"
	ProblemDiscoveryFailed              = "DISCOVERY_FAILED"
)

// Names of the checks a test connection runs, in order.
const (
	CheckGraphToken  = "graphToken"
	CheckIntuneToken = "intuneToken"
	CheckDiscovery   = "discovery"
)

// roleScepChallengeProvider is the Intune application permission the
// ScepActions token must carry.
const roleScepChallengeProvider = "scep_challenge_provider"

// Diagnosis is the result of a test connection: every check with what it
// saw, and the first problem with the administrator's fix. It never holds
// a secret or token.
type Diagnosis struct {
	OK      bool    `json:"ok"`
	Problem string  `json:"problem,omitempty"`
	Message string  `json:"message"`
	Checks  []Check `json:"checks"`
}

// Check is one step of a test connection.
type Check struct {
	Name            string `json:"name"`
	OK              bool   `json:"ok"`
	Skipped         bool   `json:"skipped,omitempty"`
	HTTPStatus      int    `json:"httpStatus,omitempty"`
	Error           string `json:"error,omitempty"`
	AADSTS          string `json:"aadsts,omitempty"`
	Detail          string `json:"detail,omitempty"`
	ClientRequestID string `json:"clientRequestId,omitempty"`
	// ServiceURI is what discovery found for ScepRequestValidationFEService.
	ServiceURI string `json:"serviceUri,omitempty"`
	// Roles are the application permissions the token carries, when it
	// is a readable JWT.
	Roles []string `json:"roles,omitempty"`
}

// Test runs the checks of a test connection for in, with fresh tokens and
// a fresh discovery (nothing cached is trusted), within the budget. It
// also drops the integration's cached client, so the next enrollment
// starts from what the administrator just fixed.
func (v *Validator) Test(ctx context.Context, in *store.Integration) Diagnosis {
	ctx, cancel := context.WithTimeout(ctx, v.budget)
	defer cancel()
	v.forget(in.ID)

	s, err := v.settings(in)
	if err != nil {
		return Diagnosis{Problem: ProblemNotConfigured, Message: "The integration's Intune settings cannot be used: " + errText(err) + ". Update the integration with the tenant, clientId and clientSecret.", Checks: []Check{}}
	}
	c := &client{v: v, s: s}
	d := Diagnosis{Checks: []Check{}}

	graphTok, graphCheck := c.tokenCheck(ctx, CheckGraphToken, GraphScope)
	_, intuneCheck := c.tokenCheck(ctx, CheckIntuneToken, IntuneScope)
	d.Checks = append(d.Checks, graphCheck, intuneCheck)
	for _, ch := range []struct {
		check Check
		scope string
	}{{graphCheck, GraphScope}, {intuneCheck, IntuneScope}} {
		if !ch.check.OK {
			d.Problem, d.Message = tokenProblem(ch.check, ch.scope, s)
			d.Checks = append(d.Checks, Check{Name: CheckDiscovery, Skipped: true})
			return d
		}
	}

	disc := Check{Name: CheckDiscovery}
	c.graphToken.value, c.graphToken.expires = graphTok, v.now().Add(v.budget)
	uri, err := c.discover(ctx)
	e, _ := errors.AsType[*Error](err)
	if e != nil {
		disc.HTTPStatus, disc.Error, disc.Detail, disc.ClientRequestID = e.Status, e.Code, e.Description, e.RequestID
	}
	switch {
	case err == nil:
		disc.OK, disc.ServiceURI = true, uri
	case errors.Is(err, ErrForbidden):
		d.Problem = ProblemMissingApplicationReadAll
		d.Message = "Microsoft Graph answered 403 to service discovery: add the application permission Microsoft Graph › Application.Read.All to the app registration and grant admin consent."
	case errors.Is(err, ErrServiceNotFound):
		d.Problem = ProblemServiceNotFound
		d.Message = "Discovery did not list " + ServiceName + ": add the application permission Intune › scep_challenge_provider (\"SCEP challenge validation\") and grant admin consent, and check that the tenant has an Intune licence."
		if roles := intuneCheck.Roles; roles != nil && !slices.Contains(roles, roleScepChallengeProvider) {
			d.Problem = ProblemMissingScepChallengeProvider
			d.Message = missingProviderMessage
		}
	case e != nil && e.Status == 0:
		d.Problem = ProblemUnreachable
		d.Message = "Could not reach Microsoft Graph at " + s.graph + ": " + errText(err) + "."
	default:
		d.Problem = ProblemDiscoveryFailed
		d.Message = "Service discovery through Microsoft Graph failed: " + errText(err) + "."
	}
	if !disc.OK && e != nil && e.Status == 0 {
		disc.Detail = errText(err)
	}
	d.Checks = append(d.Checks, disc)
	if d.Problem != "" {
		return d
	}
	// Discovery works, yet validateRequest would be refused with 401/403
	// if the Intune token carries no scep_challenge_provider role.
	if roles := intuneCheck.Roles; roles != nil && !slices.Contains(roles, roleScepChallengeProvider) {
		d.Problem, d.Message = ProblemMissingScepChallengeProvider, missingProviderMessage
		return d
	}
	d.OK = true
	d.Message = "Tokens for Microsoft Graph and Intune were issued and " + ServiceName + " was found: scepca can validate Intune SCEP challenges for this tenant."
	return d
}

const missingProviderMessage = "The Intune token carries no scep_challenge_provider role: add the application permission Intune › scep_challenge_provider (\"SCEP challenge validation\") and grant admin consent; a token issued before consent lacks the role until it expires, so test again in a few minutes."

// tokenCheck fetches a fresh token for scope and reports what it saw.
func (c *client) tokenCheck(ctx context.Context, name, scope string) (token, Check) {
	ch := Check{Name: name}
	tok, _, err := c.fetchToken(ctx, scope)
	if err != nil {
		if e, ok := errors.AsType[*Error](err); ok {
			ch.HTTPStatus, ch.Error, ch.AADSTS, ch.Detail, ch.ClientRequestID = e.Status, e.Code, e.AADSTS, e.Description, e.RequestID
			if e.Status == 0 {
				ch.Detail = errText(err)
			}
		}
		return "", ch
	}
	ch.OK = true
	ch.Roles = tokenRoles(tok)
	return tok, ch
}

// tokenProblem names the fix for a failed token request.
func tokenProblem(ch Check, scope string, s settings) (string, string) {
	if ch.HTTPStatus == 0 {
		return ProblemUnreachable, "Could not reach Entra ID at " + s.authority + ": " + ch.Detail + "."
	}
	code := ""
	if ch.AADSTS != "" {
		code = " (AADSTS" + ch.AADSTS + ")"
	}
	switch ch.AADSTS {
	case "7000215":
		return ProblemInvalidClientSecret, "Entra ID refused the client secret" + code + ": copy the secret's Value (not its Secret ID) from Certificates & secrets of the app registration " + s.clientID + " and update the integration."
	case "7000222":
		return ProblemExpiredClientSecret, "The client secret has expired" + code + ": create a new secret for the app registration " + s.clientID + " and update the integration."
	case "700016":
		return ProblemApplicationNotFound, "No application " + s.clientID + " in tenant " + s.tenant + code + ": check the Application (client) ID, and that the app is registered in the tenant that runs Intune."
	case "90002", "900023", "90013":
		return ProblemTenantNotFound, "Entra ID does not know tenant " + s.tenant + code + ": use <name>.onmicrosoft.com or the Directory (tenant) ID."
	case "500011":
		if scope == IntuneScope {
			return ProblemIntuneNotInTenant, "The tenant has no Microsoft Intune API service principal" + code + ": Intune is not licensed or set up in tenant " + s.tenant + "."
		}
	}
	return ProblemTokenRefused, fmt.Sprintf("Entra ID refused a token for %s%s: %s %s", scope, code, ch.Error, ch.Detail)
}

// tokenRoles reads the roles claim of a JWT access token without
// verifying it (it is only shown to the administrator and used to name a
// missing permission). It returns nil when the token is not a readable
// JWT, and an empty non-nil slice when it is one without roles.
func tokenRoles(tok token) []string {
	parts := strings.Split(string(tok), ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	if claims.Roles == nil {
		return []string{}
	}
	return claims.Roles
}

// errText is err's text for the administrator.
func errText(err error) string {
	return strings.TrimPrefix(err.Error(), "intune: ")
}

// forget drops an integration's cached client.
func (v *Validator) forget(id string) {
	v.mu.Lock()
	delete(v.clients, id)
	v.mu.Unlock()
}
