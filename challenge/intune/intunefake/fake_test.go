package intunefake

import (
	"crypto/elliptic"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/scepca/scepca/internal/testpki"
)

// call sends one request to the fake and returns the status and body.
func call(t *testing.T, method, u string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = []string{v}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tokenFor gets a token for scope the way the contract says.
func tokenFor(t *testing.T, s *Server, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()}, "scope": {scope}}
	status, body := call(t, http.MethodPost, s.URL+"/"+s.Tenant()+"/oauth2/v2.0/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
	if status != http.StatusOK {
		t.Fatalf("token(%s) = %d %s", scope, status, body)
	}
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return r.AccessToken
}

// TestFakeRejectsContractViolations: every deviation from PROTOCOLS.md §3
// is answered 400 and recorded.
func TestFakeRejectsContractViolations(t *testing.T) {
	t.Parallel()
	s := New(Config{})
	t.Cleanup(s.Close)
	graph, intune := tokenFor(t, s, GraphScope), tokenFor(t, s, IntuneScope)
	key := testpki.NewECKey(t, elliptic.P256())
	csr := base64.StdEncoding.EncodeToString(testpki.CSR(t, key, pkix.Name{CommonName: "x"}, "pw"))
	okHeaders := func(edit func(map[string]string)) map[string]string {
		h := map[string]string{
			"Authorization":     "Bearer " + intune,
			"Content-Type":      "application/json; charset=utf-8",
			"Client-Request-Id": "0f8fad5b-d9cb-469f-a165-70867728950e",
			"Api-Version":       APIVersion,
			"UserAgent":         "scepca/test",
		}
		if edit != nil {
			edit(h)
		}
		return h
	}
	validate := s.URL + ServicePath + "/ScepActions/validateRequest"
	okBody := `{"request":{"transactionId":"t","certificateRequest":"` + csr + `","callerInfo":"c"}}`
	tests := []struct {
		name   string
		method string
		url    string
		header map[string]string
		body   string
	}{
		{"token scope without double slash", http.MethodPost, s.URL + "/" + s.Tenant() + "/oauth2/v2.0/token",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()}, "scope": {"https://api.manage.microsoft.com/.default"}}.Encode()},
		{"token extra field", http.MethodPost, s.URL + "/" + s.Tenant() + "/oauth2/v2.0/token",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID()}, "client_secret": {s.ClientSecret()}, "scope": {GraphScope}, "resource": {"x"}}.Encode()},
		{"token as JSON", http.MethodPost, s.URL + "/" + s.Tenant() + "/oauth2/v2.0/token", map[string]string{"Content-Type": "application/json"}, `{}`},
		{"discovery without client-request-id", http.MethodGet, s.URL + discoveryPath, map[string]string{"Authorization": "Bearer " + graph}, ""},
		{"discovery with the Intune token", http.MethodGet, s.URL + discoveryPath, map[string]string{"Authorization": "Bearer " + intune, "Client-Request-Id": "0f8fad5b-d9cb-469f-a165-70867728950e"}, ""},
		{"action with the Graph token", http.MethodPost, validate, okHeaders(func(h map[string]string) { h["Authorization"] = "Bearer " + graph }), okBody},
		{"action without api-version", http.MethodPost, validate, okHeaders(func(h map[string]string) { delete(h, "Api-Version") }), okBody},
		{"action with EJBCA's api-version", http.MethodPost, validate, okHeaders(func(h map[string]string) { h["Api-Version"] = "5019-05-05" }), okBody},
		{"action with a non-GUID request id", http.MethodPost, validate, okHeaders(func(h map[string]string) { h["Client-Request-Id"] = "1" }), okBody},
		{"action as text/plain", http.MethodPost, validate, okHeaders(func(h map[string]string) { h["Content-Type"] = "text/plain" }), okBody},
		{"action without UserAgent", http.MethodPost, validate, okHeaders(func(h map[string]string) { delete(h, "UserAgent") }), okBody},
		{"unknown field", http.MethodPost, validate, okHeaders(nil), `{"request":{"transactionId":"t","certificateRequest":"` + csr + `","callerInfo":"c","extra":1}}`},
		{"missing field", http.MethodPost, validate, okHeaders(nil), `{"request":{"transactionId":"t","certificateRequest":"` + csr + `"}}`},
		{"wrong wrapper", http.MethodPost, validate, okHeaders(nil), `{"notification":{"transactionId":"t","certificateRequest":"` + csr + `","callerInfo":"c"}}`},
		{"empty callerInfo", http.MethodPost, validate, okHeaders(nil), `{"request":{"transactionId":"t","certificateRequest":"` + csr + `","callerInfo":""}}`},
		{"URL-safe base64 CSR", http.MethodPost, validate, okHeaders(nil), `{"request":{"transactionId":"t","certificateRequest":"` + strings.NewReplacer("+", "-", "/", "_").Replace(csr) + "A" + `","callerInfo":"c"}}`},
		{"PEM CSR", http.MethodPost, validate, okHeaders(nil), `{"request":{"transactionId":"t","certificateRequest":"-----BEGIN CERTIFICATE REQUEST-----\n` + csr + `","callerInfo":"c"}}`},
		{"not a CSR", http.MethodPost, validate, okHeaders(nil), `{"request":{"transactionId":"t","certificateRequest":"AAAA","callerInfo":"c"}}`},
		{"success before validate", http.MethodPost, s.URL + ServicePath + "/ScepActions/successNotification", okHeaders(nil),
			`{"notification":{"transactionId":"never","certificateRequest":"` + csr + `","certificateThumbprint":"0123456789ABCDEF0123456789ABCDEF01234567","certificateSerialNumber":"1A","certificateExpirationDateUtc":"2030-01-01T00:00:00.0000000Z","issuingCertificateAuthority":"CN=x","callerInfo":"c","caConfiguration":"CN=x","certificateAuthority":"CN=x"}}`},
		{"lower-case thumbprint", http.MethodPost, s.URL + ServicePath + "/ScepActions/successNotification", okHeaders(nil),
			`{"notification":{"transactionId":"t","certificateRequest":"` + csr + `","certificateThumbprint":"0123456789abcdef0123456789abcdef01234567","certificateSerialNumber":"1A","certificateExpirationDateUtc":"2030-01-01T00:00:00.0000000Z","issuingCertificateAuthority":"CN=x","callerInfo":"c","caConfiguration":"CN=x","certificateAuthority":"CN=x"}}`},
		{"string hResult", http.MethodPost, s.URL + ServicePath + "/ScepActions/failureNotification", okHeaders(nil),
			`{"notification":{"transactionId":"t","certificateRequest":"` + csr + `","hResult":"536871169","errorDescription":"x","callerInfo":"c"}}`},
		{"long errorDescription", http.MethodPost, s.URL + ServicePath + "/ScepActions/failureNotification", okHeaders(nil),
			`{"notification":{"transactionId":"t","certificateRequest":"` + csr + `","hResult":1,"errorDescription":"` + strings.Repeat("x", 256) + `","callerInfo":"c"}}`},
		{"unknown action", http.MethodPost, s.URL + ServicePath + "/ScepActions/revoke", okHeaders(nil), okBody},
		{"unknown path", http.MethodGet, s.URL + "/v1.0/me", nil, ""},
	}
	for _, tc := range tests {
		before := len(s.Violations())
		status, body := call(t, tc.method, tc.url, tc.header, tc.body)
		if status != http.StatusBadRequest && status != http.StatusUnauthorized {
			t.Errorf("%s: status %d %s, want 400 or 401", tc.name, status, body)
		}
		if got := len(s.Violations()); got != before+1 {
			t.Errorf("%s: violations %d → %d, want one more", tc.name, before, got)
		}
	}
	// The same request done right passes, and nothing was counted for the
	// rejected ones.
	if status, body := call(t, http.MethodPost, validate, okHeaders(nil), okBody); status != http.StatusOK || !strings.Contains(body, CodeDeserialization) {
		t.Errorf("valid validateRequest = %d %s, want 200 %s", status, body, CodeDeserialization)
	}
	if got := s.ActionRequests(ActionValidate); got != 1 {
		t.Errorf("ActionRequests(validate) = %d, want 1", got)
	}
}

// TestFakeRuntimeErrors: wrong credentials are the real services' answers,
// not contract violations.
func TestFakeRuntimeErrors(t *testing.T) {
	t.Parallel()
	s := Start(t, Config{})
	for _, tc := range []struct {
		name, tenant, clientID, secret string
		status                         int
		aadsts                         string
	}{
		{"wrong secret", s.Tenant(), s.ClientID(), "wrong", http.StatusUnauthorized, "AADSTS7000215"},
		{"unknown client", s.Tenant(), "00000000-0000-0000-0000-000000000000", s.ClientSecret(), http.StatusBadRequest, "AADSTS700016"},
		{"unknown tenant", "fabrikam.onmicrosoft.com", s.ClientID(), s.ClientSecret(), http.StatusBadRequest, "AADSTS90002"},
	} {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {tc.clientID}, "client_secret": {tc.secret}, "scope": {GraphScope}}
		status, body := call(t, http.MethodPost, s.URL+"/"+tc.tenant+"/oauth2/v2.0/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
		if status != tc.status || !strings.Contains(body, tc.aadsts) {
			t.Errorf("token(%s) = %d %s, want %d with %s", tc.name, status, body, tc.status, tc.aadsts)
		}
	}
	if got := s.TokenRequests(GraphScope); got != 3 {
		t.Errorf("TokenRequests(Graph) = %d, want 3", got)
	}
}
