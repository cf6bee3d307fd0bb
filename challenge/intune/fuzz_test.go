package intune

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzIntuneResponse feeds arbitrary bytes to every parser of what Entra
// ID, Graph and Intune answer: none may panic, and none may report
// success without what success needs (a code, a token and its lifetime,
// a service URI).
func FuzzIntuneResponse(f *testing.F) {
	for _, seed := range []string{
		`{"code":"Success","errorDescription":""}`,
		`{"code":"BadTenantIdInChallenge","errorDescription":"Failed to parse the tenant id in the challenge.","@odata.context":"https://fef.msuc05.manage.microsoft.com/RACerts/x"}`,
		`{"error":{"code":"InternalError","message":"An internal server error occurred."}}`,
		`{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0.eyJ.sig"}`,
		`{"token_type":"Bearer","expires_in":"3599","access_token":"x"}`,
		`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1","error_codes":[7000215]}`,
		`{"value":[{"id":"1","capability":"x","providerId":"2","providerName":"ScepRequestValidationFEService","providerResourceId":"3","uri":"https://fef.msuc02.manage.microsoft.com/RACerts/ScepRequestValidationFEService/Gateway/StatelessScepRequestValidationService"},{"providerName":"PkiConnectorFEService","uri":"https://x"}]}`,
		`{"value":[]}`,
		`{"code":null}`,
		`{"code":["Success"]}`,
		`[]`, `null`, ``, `{`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if code, _, err := parseAction(body); err == nil && code == "" {
			t.Errorf("parseAction(%q) = empty code without error", body)
		}
		if tok, life, err := parseToken(body); err == nil && (tok == "" || life <= 0) {
			t.Errorf("parseToken(%q) = empty token or lifetime %v without error", body, life)
		}
		_, aadsts, _ := parseOAuthError(body)
		for _, c := range aadsts {
			if c < '0' || c > '9' {
				t.Errorf("parseOAuthError(%q) AADSTS = %q, want digits", body, aadsts)
			}
		}
		if uri, ok, err := parseDiscovery(body); ok && (err != nil || uri == "") {
			t.Errorf("parseDiscovery(%q) = %q, %v, %v", body, uri, ok, err)
		}
		parseServiceError(body)
		tokenRoles(token(body))
		if s := shorten(string(body), "secret"); utf8.ValidString(string(body)) && strings.Contains(s, "secret") && !strings.Contains(s, "REDACTED") {
			t.Errorf("shorten(%q) kept the secret", body)
		}
		if d := truncateDescription(string(body)); !strings.HasPrefix(string(body), d) {
			t.Errorf("truncateDescription(%q) = %q, not a prefix", body, d)
		}
	})
}
