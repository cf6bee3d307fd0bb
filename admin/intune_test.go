package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/challenge/intune"
	"github.com/scepca/scepca/challenge/intune/intunefake"
	"github.com/scepca/scepca/store"
)

// intuneFixture is the admin API with a key-encryption key and an Intune
// validator pointed at a strict fake.
type intuneFixture struct {
	*fixture
	fake *intunefake.Server
	kek  *ca.KEK
}

func newIntuneFixture(t *testing.T) *intuneFixture {
	t.Helper()
	db := openDB(t)
	kek, err := ca.ParseKEK([]byte(strings.Repeat("5a", 32)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := intune.New(intune.Config{Opener: kek})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureWith(t, db, maxBody, func(cfg *admin.Config) {
		cfg.Sealer = kek
		cfg.Intune = v
	})
	return &intuneFixture{fixture: f, fake: intunefake.Start(t, intunefake.Config{}), kek: kek}
}

// body is a creation request for an INTUNE integration at the fake, with
// secret (the fake's when empty) and extra members.
func (f *intuneFixture) body(secret, extra string) string {
	if secret == "" {
		secret = f.fake.ClientSecret()
	}
	intuneJSON, _ := json.Marshal(map[string]string{
		"tenant": f.fake.Tenant(), "clientId": f.fake.ClientID(), "clientSecret": secret,
		"authorityUrl": f.fake.URL, "graphUrl": f.fake.URL + "/",
	})
	return `{"name":"Intune Windows","platform":"DESKTOP","challengeType":"INTUNE","intune":` + string(intuneJSON) + extra + `}`
}

// TestCreateIntuneIntegration: 201 with id and scepUrl and the app
// registration, never the secret; the store holds it sealed for this ID.
func TestCreateIntuneIntegration(t *testing.T) {
	t.Parallel()
	f := newIntuneFixture(t)
	resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations", f.body("", ""))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST INTUNE integration = %d %s, want 201", resp.StatusCode, b)
	}
	var in admin.Integration
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	want := admin.IntuneView{Tenant: f.fake.Tenant(), ClientID: f.fake.ClientID(), AuthorityURL: f.fake.URL, GraphURL: f.fake.URL}
	if in.ID == "" || in.SCEPURL != wantBase+"/scep/"+in.ID || in.ChallengeType != store.ChallengeIntune || in.Intune == nil || *in.Intune != want {
		t.Errorf("POST INTUNE integration = %s, want id, scepUrl and intune %+v", b, want)
	}
	if strings.Contains(string(b), f.fake.ClientSecret()) || strings.Contains(string(b), "secretKey") || strings.Contains(string(b), "clientSecret") {
		t.Errorf("creation response %s echoes a secret", b)
	}
	if resp.Header.Get("Location") != "/api/v1/device-integrations/"+in.ID {
		t.Errorf("Location = %q", resp.Header.Get("Location"))
	}

	rec, err := f.db.GetIntegration(t.Context(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.SecretHash) != 0 || rec.Renewal {
		t.Errorf("stored INTUNE integration has a static secret hash or renewal: %+v", rec)
	}
	plain, err := f.kek.Open(rec.IntuneSecretCiphertext, []byte(in.ID))
	if err != nil || string(plain) != f.fake.ClientSecret() {
		t.Errorf("Open(sealed secret, AAD %q) = %v, want the client secret", in.ID, err)
	}
	if _, err := f.kek.Open(rec.IntuneSecretCiphertext, []byte("another-id")); err == nil {
		t.Error("the sealed secret opens for another integration ID")
	}

	// GET and list show the app registration, never the secret.
	for _, path := range []string{"/api/v1/device-integrations/" + in.ID, "/api/v1/device-integrations"} {
		resp, b := f.do(t, http.MethodGet, path, "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), f.fake.ClientID()) || !strings.Contains(string(b), f.fake.Tenant()) {
			t.Errorf("GET %s = %d %s, want tenant and clientId", path, resp.StatusCode, b)
		}
		if strings.Contains(string(b), f.fake.ClientSecret()) || strings.Contains(string(b), "ecret") || strings.Contains(string(b), "iphertext") {
			t.Errorf("GET %s = %s, shows a secret", path, b)
		}
	}
	// There is no secret of ours to reset.
	resp, b = f.do(t, http.MethodPost, "/api/v1/device-integrations/"+in.ID+"/lifecycle/reset-secret", "")
	wantProblem(t, "reset-secret of an INTUNE integration", resp, b, http.StatusConflict, "no secret to reset")
}

func TestCreateIntuneIntegrationInvalid(t *testing.T) {
	t.Parallel()
	f := newIntuneFixture(t)
	const secret = "Zq8~secret.value_1234567890"
	good := map[string]string{"tenant": "contoso.onmicrosoft.com", "clientId": "6a1f1c3e-5b7d-4e2a-9c1b-2f3e4d5c6b7a", "clientSecret": secret}
	with := func(k, v string) string {
		m := map[string]string{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == "<delete>" {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return `{"name":"i","platform":"DESKTOP","challengeType":"INTUNE","intune":` + string(b) + `}`
	}
	tests := []struct {
		name, body, detail string
	}{
		{"no intune member", `{"name":"i","platform":"DESKTOP","challengeType":"INTUNE"}`, "needs intune"},
		{"tenant as a custom domain", with("tenant", "contoso.com"), "intune.tenant must be <name>.onmicrosoft.com or the tenant ID"},
		{"tenant missing", with("tenant", "<delete>"), "intune.tenant"},
		{"clientId not a GUID", with("clientId", "scepca"), "intune.clientId"},
		{"secret missing", with("clientSecret", "<delete>"), "intune.clientSecret is required"},
		{"secret with a space", with("clientSecret", "two words"), "intune.clientSecret must be printable ASCII"},
		{"authority over plain http", with("authorityUrl", "http://login.example.com"), "intune.authorityUrl"},
		{"graph with a query", with("graphUrl", "https://graph.microsoft.com?x=1"), "intune.graphUrl"},
		{"unknown intune field", strings.Replace(with("tenant", "contoso.onmicrosoft.com"), `"tenant"`, `"tenantId":"x","tenant"`, 1), "unknown field"},
		{"intune on a STATIC integration", `{"name":"s","platform":"DESKTOP","challengeType":"STATIC","intune":{"tenant":"x"}}`, "intune applies only to INTUNE"},
		{"renewal", strings.Replace(with("tenant", "contoso.onmicrosoft.com"), `"challengeType":"INTUNE"`, `"challengeType":"INTUNE","renewal":true`, 1), "renewal is not available for INTUNE"},
		{"DYNAMIC options", strings.Replace(with("tenant", "contoso.onmicrosoft.com"), `"challengeType":"INTUNE"`, `"challengeType":"INTUNE","maxOutstanding":5`, 1), "apply only to DYNAMIC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations", tc.body)
			wantProblem(t, "POST "+tc.name, resp, b, http.StatusBadRequest, tc.detail)
			if strings.Contains(string(b), secret) || strings.Contains(string(b), "two words") {
				t.Errorf("POST %s = %s, quotes the secret", tc.name, b)
			}
		})
	}
	t.Cleanup(func() {
		if list, _ := f.db.ListIntegrations(t.Context()); len(list) != 0 {
			t.Errorf("store holds %d integrations after refused creations, want 0", len(list))
		}
	})
}

// TestIntuneTestConnection: POST …/test answers the diagnosis: OK, wrong
// secret with its AADSTS code, missing Application.Read.All, service not
// found; and PUT …/intune repairs a wrong secret.
func TestIntuneTestConnection(t *testing.T) {
	t.Parallel()
	f := newIntuneFixture(t)
	test := func(id string) intune.Diagnosis {
		t.Helper()
		resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations/"+id+"/test", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST test = %d %s, want 200", resp.StatusCode, b)
		}
		if strings.Contains(string(b), f.fake.ClientSecret()) || strings.Contains(string(b), "eyJ") {
			t.Errorf("diagnosis %s holds the secret or a token", b)
		}
		var d intune.Diagnosis
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	good := f.create(t, f.body("", ""))
	if d := test(good.ID); !d.OK || len(d.Checks) != 3 {
		t.Errorf("test(good) = %+v, want OK with three checks", d)
	}

	wrong := f.create(t, f.body("Wrong~secret-value", ""))
	d := test(wrong.ID)
	if d.OK || d.Problem != intune.ProblemInvalidClientSecret || !strings.Contains(d.Message, "AADSTS7000215") || d.Checks[0].AADSTS != "7000215" {
		t.Errorf("test(wrong secret) = %+v, want %s with AADSTS7000215", d, intune.ProblemInvalidClientSecret)
	}

	f.fake.SetDiscoveryStatus(http.StatusForbidden)
	if d := test(good.ID); d.Problem != intune.ProblemMissingApplicationReadAll || !strings.Contains(d.Message, "Application.Read.All") {
		t.Errorf("test(discovery 403) = %+v, want %s", d, intune.ProblemMissingApplicationReadAll)
	}
	f.fake.SetDiscoveryStatus(0)
	f.fake.SetSCEPProvider(false)
	if d := test(good.ID); d.Problem != intune.ProblemServiceNotFound || !strings.Contains(d.Message, "scep_challenge_provider") || !strings.Contains(d.Message, "licence") {
		t.Errorf("test(no SCEP provider) = %+v, want %s naming the permission and the licence", d, intune.ProblemServiceNotFound)
	}
	f.fake.SetSCEPProvider(true)

	// Rotating the secret repairs the integration.
	fixed, _ := json.Marshal(map[string]string{"tenant": f.fake.Tenant(), "clientId": f.fake.ClientID(), "clientSecret": f.fake.ClientSecret(), "authorityUrl": f.fake.URL, "graphUrl": f.fake.URL})
	resp, b := f.do(t, http.MethodPut, "/api/v1/device-integrations/"+wrong.ID+"/intune", string(fixed))
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), f.fake.ClientSecret()) {
		t.Fatalf("PUT intune = %d %s, want 200 without the secret", resp.StatusCode, b)
	}
	if d := test(wrong.ID); !d.OK {
		t.Errorf("test(after rotating the secret) = %+v, want OK", d)
	}

	static := f.create(t, `{"name":"s","platform":"DESKTOP","challengeType":"STATIC"}`)
	resp, b = f.do(t, http.MethodPost, "/api/v1/device-integrations/"+static.ID+"/test", "")
	wantProblem(t, "test of a STATIC integration", resp, b, http.StatusConflict, "apply to INTUNE integrations")
	resp, b = f.do(t, http.MethodPut, "/api/v1/device-integrations/"+static.ID+"/intune", string(fixed))
	wantProblem(t, "PUT intune of a STATIC integration", resp, b, http.StatusConflict, "apply to INTUNE integrations")
	resp, b = f.do(t, http.MethodPost, "/api/v1/device-integrations/intnope/test", "")
	wantProblem(t, "test of an unknown integration", resp, b, http.StatusNotFound, "no integration")
	resp, b = f.do(t, http.MethodPut, "/api/v1/device-integrations/"+good.ID+"/intune", `{"tenant":"x"}`)
	wantProblem(t, "PUT intune with a bad tenant", resp, b, http.StatusBadRequest, "intune.tenant")

	for name, out := range map[string]string{"audit log": f.audit.String(), "request log": f.reqlog.String()} {
		if strings.Contains(out, f.fake.ClientSecret()) || strings.Contains(out, "Wrong~secret-value") {
			t.Errorf("%s holds a client secret: %s", name, out)
		}
	}
	if !strings.Contains(f.audit.String(), `"device.integration.test"`) || !strings.Contains(f.audit.String(), `"device.integration.update_intune"`) {
		t.Errorf("audit log = %s, want test and update_intune events", f.audit.String())
	}
}

// TestIntuneWithoutSealer: without a key-encryption key an INTUNE
// integration cannot be created (there would be nowhere safe for its secret).
func TestIntuneWithoutSealer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := `{"name":"i","platform":"DESKTOP","challengeType":"INTUNE","intune":{"tenant":"contoso.onmicrosoft.com","clientId":"6a1f1c3e-5b7d-4e2a-9c1b-2f3e4d5c6b7a","clientSecret":"Zq8~secret"}}`
	resp, b := f.do(t, http.MethodPost, "/api/v1/device-integrations", body)
	wantProblem(t, "POST INTUNE without a KEK", resp, b, http.StatusInternalServerError, "internal error")
}
