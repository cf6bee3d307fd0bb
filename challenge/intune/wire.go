package intune

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Protocol constants (PROTOCOLS.md §3.3–§3.5).
const (
	// DefaultAuthorityURL and DefaultGraphURL are the commercial cloud's
	// Entra ID and Microsoft Graph base URLs.
	DefaultAuthorityURL = "https://login.microsoftonline.com"
	DefaultGraphURL     = "https://graph.microsoft.com"
	// GraphScope is the client-credentials scope of the discovery token.
	GraphScope = "https://graph.microsoft.com/.default"
	// IntuneScope is the scope of the ScepActions token. The double slash
	// is deliberate: every reference client appends "/.default" to
	// "https://api.manage.microsoft.com/".
	IntuneScope = "https://api.manage.microsoft.com//.default"
	// IntuneAppID is the appId of the Microsoft Intune service principal.
	IntuneAppID = "0000000a-0000-0000-c000-000000000000"
	// ServiceName is the discovery providerName of the SCEP validation service.
	ServiceName = "ScepRequestValidationFEService"
	// APIVersion is the api-version header of the ScepActions calls.
	APIVersion = "2018-02-20"
)

// ScepActions names.
const (
	ActionValidate = "validateRequest"
	ActionSuccess  = "successNotification"
	ActionFailure  = "failureNotification"
)

// HResults of failureNotification (PROTOCOLS.md §3.5): customer-defined
// MS-ERREF codes, as EJBCA sends them.
const (
	// HResultInternal is an internal error of ours (signing, storage).
	HResultInternal int64 = 0x20000001
	// HResultFailInfoBase plus the SCEP failInfo is a refusal by policy.
	HResultFailInfoBase int64 = 0x20000100
)

// maxErrorDescription is the longest errorDescription Intune accepts.
const maxErrorDescription = 255

// maxBody bounds every response body read from Microsoft.
const maxBody = 1 << 20

// validateRequestBody is the body of ScepActions/validateRequest.
type validateRequestBody struct {
	Request validateRequest `json:"request"`
}

type validateRequest struct {
	TransactionID      string `json:"transactionId"`
	CertificateRequest string `json:"certificateRequest"`
	CallerInfo         string `json:"callerInfo"`
}

// successNotificationBody is the body of ScepActions/successNotification.
type successNotificationBody struct {
	Notification successNotification `json:"notification"`
}

type successNotification struct {
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

// failureNotificationBody is the body of ScepActions/failureNotification.
type failureNotificationBody struct {
	Notification failureNotification `json:"notification"`
}

type failureNotification struct {
	TransactionID      string `json:"transactionId"`
	CertificateRequest string `json:"certificateRequest"`
	HResult            int64  `json:"hResult"`
	ErrorDescription   string `json:"errorDescription"`
	CallerInfo         string `json:"callerInfo"`
}

// expirationLayout is certificateExpirationDateUtc: RFC 3339 in UTC with
// seven fractional digits and "Z", as in Microsoft's example
// "2018-06-11T16:11:20.0904778Z".
const expirationLayout = "2006-01-02T15:04:05.0000000Z"

// truncateDescription shortens s to maxErrorDescription characters on a
// rune boundary, counting characters as .NET does (UTF-16 code units), so
// a description is never cut inside a character nor rejected as too long.
// Short strings are returned untouched.
func truncateDescription(s string) string {
	n := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if n+w > maxErrorDescription {
			return s[:i]
		}
		n += w
	}
	return s
}

// tokenResponse is a successful client-credentials answer.
type tokenResponse struct {
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	AccessToken string          `json:"access_token"`
}

// oauthError is Entra ID's error body.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
}

var aadstsPattern = regexp.MustCompile(`AADSTS(\d{1,10})`)

// parseToken parses a 2xx token response: a Bearer access token and its
// lifetime. expires_in may be a number or a numeric string (v1 endpoints).
func parseToken(body []byte) (token, time.Duration, error) {
	var r tokenResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return "", 0, fmt.Errorf("token response: %w", err)
	}
	if !strings.EqualFold(r.TokenType, "Bearer") {
		return "", 0, fmt.Errorf("token response: token_type %q, want Bearer", shorten(r.TokenType, ""))
	}
	if r.AccessToken == "" || strings.ContainsAny(r.AccessToken, " \t\r\n") {
		return "", 0, errors.New("token response: missing or malformed access_token")
	}
	raw := strings.Trim(string(bytes.TrimSpace(r.ExpiresIn)), `"`)
	secs, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || secs <= 0 || secs > 7*24*3600 {
		return "", 0, fmt.Errorf("token response: expires_in %q is not a positive number of seconds", shorten(raw, ""))
	}
	return token(r.AccessToken), time.Duration(secs) * time.Second, nil
}

// parseOAuthError extracts the OAuth error code and AADSTS number from a
// token endpoint's error body; it returns zero values for other bodies.
func parseOAuthError(body []byte) (code, aadsts, description string) {
	var e oauthError
	if json.Unmarshal(body, &e) != nil {
		return "", "", ""
	}
	if m := aadstsPattern.FindStringSubmatch(e.ErrorDescription); m != nil {
		aadsts = m[1]
	} else if len(e.ErrorCodes) > 0 && e.ErrorCodes[0] > 0 {
		aadsts = strconv.Itoa(e.ErrorCodes[0])
	}
	// The first line is the message; the rest is trace and correlation IDs.
	description, _, _ = strings.Cut(e.ErrorDescription, "\r\n")
	description, _, _ = strings.Cut(description, "\n")
	return e.Error, aadsts, description
}

// endpoint is one entry of the Intune service principal's endpoints.
type endpoint struct {
	ProviderName string `json:"providerName"`
	URI          string `json:"uri"`
}

// parseDiscovery returns the uri of ServiceName (providerName matched
// case-insensitively) from a Graph endpoints response; ok is false when
// the service is not listed.
func parseDiscovery(body []byte) (uri string, ok bool, err error) {
	var r struct {
		Value []endpoint `json:"value"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", false, fmt.Errorf("discovery response: %w", err)
	}
	for _, e := range r.Value {
		if strings.EqualFold(e.ProviderName, ServiceName) {
			if e.URI == "" {
				return "", false, fmt.Errorf("discovery response: %s has no uri", ServiceName)
			}
			return e.URI, true, nil
		}
	}
	return "", false, nil
}

// actionResponse is the 2xx body of a ScepActions call. Other members
// (such as "@odata.context") are ignored.
type actionResponse struct {
	Code             *string `json:"code"`
	ErrorDescription string  `json:"errorDescription"`
}

// codeSuccess is the one code that lets a certificate be issued.
const codeSuccess = "Success"

// parseAction returns Intune's code and description from a 2xx body; a
// body without a string code is an error.
func parseAction(body []byte) (code, description string, err error) {
	var r actionResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return "", "", fmt.Errorf("response: %w", err)
	}
	if r.Code == nil || *r.Code == "" {
		return "", "", errors.New("response has no code")
	}
	return *r.Code, r.ErrorDescription, nil
}

// parseServiceError extracts code and message from a non-2xx body shaped
// {"error":{"code","message"}} (Graph, Intune); zero values otherwise.
func parseServiceError(body []byte) (code, message string) {
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &r) != nil || len(r.Error) == 0 {
		return "", ""
	}
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(r.Error, &e) == nil {
		return e.Code, e.Message
	}
	var s string
	if json.Unmarshal(r.Error, &s) == nil {
		return s, ""
	}
	return "", ""
}
