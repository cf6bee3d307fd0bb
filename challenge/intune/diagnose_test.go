package intune

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/scepca/scepca/challenge/intune/intunefake"
)

// TestTest: a test connection names the first problem with its fix
// (PROTOCOLS.md §3.8), from fresh tokens and a fresh discovery.
func TestTest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		setup       func(f *fixture)
		secret      string // "" = the right one
		wantProblem string
		wantInMsg   string
		wantChecks  map[string]bool // check name → OK
	}{
		{name: "all good", wantInMsg: "can validate",
			wantChecks: map[string]bool{CheckGraphToken: true, CheckIntuneToken: true, CheckDiscovery: true}},
		{name: "wrong secret", secret: "wrong", wantProblem: ProblemInvalidClientSecret, wantInMsg: "AADSTS7000215",
			wantChecks: map[string]bool{CheckGraphToken: false, CheckIntuneToken: false, CheckDiscovery: false}},
		{name: "expired secret", setup: func(f *fixture) {
			f.fake.FailTokens("", intunefake.TokenFailure(http.StatusUnauthorized, "invalid_client", 7000222, "The provided client secret keys for app are expired."))
		}, wantProblem: ProblemExpiredClientSecret, wantInMsg: "AADSTS7000222"},
		{name: "unknown application", setup: func(f *fixture) { f.integ.IntuneClientID = "00000000-0000-4000-8000-000000000001" },
			wantProblem: ProblemApplicationNotFound, wantInMsg: "AADSTS700016"},
		{name: "unknown tenant", setup: func(f *fixture) { f.integ.IntuneTenant = "fabrikam.onmicrosoft.com" },
			wantProblem: ProblemTenantNotFound, wantInMsg: "AADSTS90002"},
		{name: "no Intune in tenant", setup: func(f *fixture) {
			f.fake.FailTokens(intunefake.IntuneScope, intunefake.TokenFailure(http.StatusBadRequest, "invalid_resource", 500011, "The resource principal named https://api.manage.microsoft.com/ was not found in the tenant."))
		}, wantProblem: ProblemIntuneNotInTenant, wantInMsg: "AADSTS500011",
			wantChecks: map[string]bool{CheckGraphToken: true, CheckIntuneToken: false, CheckDiscovery: false}},
		{name: "other token refusal", setup: func(f *fixture) {
			f.fake.FailTokens(intunefake.GraphScope, intunefake.TokenFailure(http.StatusBadRequest, "invalid_client", 7000112, "Application is disabled."))
		}, wantProblem: ProblemTokenRefused, wantInMsg: "AADSTS7000112"},
		{name: "discovery 403", setup: func(f *fixture) { f.fake.SetDiscoveryStatus(http.StatusForbidden) },
			wantProblem: ProblemMissingApplicationReadAll, wantInMsg: "Application.Read.All",
			wantChecks: map[string]bool{CheckGraphToken: true, CheckIntuneToken: true, CheckDiscovery: false}},
		{name: "service not listed", setup: func(f *fixture) { f.fake.SetSCEPProvider(false) },
			wantProblem: ProblemServiceNotFound, wantInMsg: "scep_challenge_provider"},
		{name: "service not listed, token without the role", setup: func(f *fixture) {
			f.fake.SetSCEPProvider(false)
			f.fake.SetRoles(intunefake.IntuneScope, nil)
		}, wantProblem: ProblemMissingScepChallengeProvider, wantInMsg: "admin consent"},
		{name: "listed, but token without the role", setup: func(f *fixture) {
			f.fake.SetRoles(intunefake.IntuneScope, []string{"something_else"})
		}, wantProblem: ProblemMissingScepChallengeProvider, wantInMsg: "scep_challenge_provider"},
		{name: "discovery 500", setup: func(f *fixture) { f.fake.SetDiscoveryStatus(http.StatusInternalServerError) },
			wantProblem: ProblemDiscoveryFailed, wantInMsg: "500"},
		{name: "unreachable", setup: func(f *fixture) { f.fake.Close() }, wantProblem: ProblemUnreachable, wantInMsg: "Could not reach Entra ID"},
		{name: "secret does not open", setup: func(f *fixture) { f.integ.IntuneSecretCiphertext = []byte("garbage") },
			wantProblem: ProblemNotConfigured, wantInMsg: "client secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if tc.secret != "" {
				f.integ = f.integration(t, f.integ.ID, tc.secret)
			}
			if tc.setup != nil {
				tc.setup(f)
			}
			d := f.v.Test(t.Context(), f.integ)
			if d.OK != (tc.wantProblem == "") || d.Problem != tc.wantProblem || !strings.Contains(d.Message, tc.wantInMsg) {
				t.Errorf("Test() = ok %v, %s: %q; want %q mentioning %q", d.OK, d.Problem, d.Message, tc.wantProblem, tc.wantInMsg)
			}
			for _, c := range d.Checks {
				if want, ok := tc.wantChecks[c.Name]; ok && c.OK != want {
					t.Errorf("Test() check %s ok = %v, want %v (%+v)", c.Name, c.OK, want, c)
				}
			}
			out, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), f.fake.ClientSecret()) || strings.Contains(string(out), "eyJ") {
				t.Errorf("diagnosis %s holds the secret or a token", out)
			}
		})
	}
}

// TestTestUsesFreshState: a test connection does not trust cached tokens
// or discovery, and resets the integration's client.
func TestTestUsesFreshState(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fake.Accept("ok")
	if err := f.v.Validate(t.Context(), f.request(t, "1", "ok")); err != nil {
		t.Fatal(err)
	}
	if d := f.v.Test(t.Context(), f.integ); !d.OK {
		t.Fatalf("Test() = %+v, want OK", d)
	}
	if got := f.counts(); got.graphTokens != 2 || got.intuneTokens != 2 || got.discovery != 2 {
		t.Errorf("after Test, fake counted %+v, want fresh tokens and discovery", got)
	}
	if err := f.v.Validate(t.Context(), f.request(t, "2", "ok")); err != nil {
		t.Fatal(err)
	}
	if got := f.counts(); got.intuneTokens != 3 {
		t.Errorf("after Test then Validate, Intune tokens = %d, want 3 (client rebuilt)", got.intuneTokens)
	}
}

func TestTokenRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tok  string
		want []string
	}{
		{"opaque", nil},
		{"a.b.c", nil},
		{"h.eyJyb2xlcyI6WyJzY2VwX2NoYWxsZW5nZV9wcm92aWRlciJdfQ.s", []string{"scep_challenge_provider"}},
		{"h.eyJhdWQiOiJ4In0.s", []string{}},
	} {
		got := tokenRoles(token(tc.tok))
		if (got == nil) != (tc.want == nil) || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("tokenRoles(%q) = %#v, want %#v", tc.tok, got, tc.want)
		}
	}
}
