package admin_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/store"
)

// newRotationFixture serves the API with a real CA (ECDSA, so that rotation
// also re-issues the RSA RA) as its CA lifecycle.
func newRotationFixture(t *testing.T) (*fixture, *ca.Authority, *syncBuffer) {
	t.Helper()
	db := openDB(t)
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	kek, err := ca.ParseKEK([]byte(base64.StdEncoding.EncodeToString(raw)))
	if err != nil {
		t.Fatal(err)
	}
	audit := &syncBuffer{}
	a, err := ca.Init(t.Context(), db, kek, ca.Config{Org: "Test", KeyType: ca.KeyTypeECDSA, Logger: slog.New(slog.NewJSONHandler(audit, nil))})
	if err != nil {
		t.Fatalf("ca.Init() = %v", err)
	}
	f := newFixtureWith(t, db, 128<<10, func(cfg *admin.Config) {
		cfg.CA = a
	})
	return f, a, audit
}

func decodeCA(t *testing.T, what string, b []byte) admin.CertificateAuthority {
	t.Helper()
	var v admin.CertificateAuthority
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: decode %s: %v", what, b, err)
	}
	return v
}

// TestRotateAPI walks the rotation lifecycle through the API: rotate
// (NEXT), the refusals while one is staged, activate (old one RETIRED),
// the delete rules, and the root key supplied once it is offline.
func TestRotateAPI(t *testing.T) {
	t.Parallel()
	f, a, audit := newRotationFixture(t)
	ctx := t.Context()
	oldID := a.IntermediateID()
	const base = "/api/v1/certificate-authorities"

	for _, tc := range []struct{ name, body, detail string }{
		{"unknown field", `{"keyTyp":"rsa"}`, "invalid JSON body"},
		{"bad key type", `{"keyType":"dsa"}`, `keyType must be "rsa" or "ecdsa", not "dsa"`},
		{"not JSON", `rsa`, "invalid JSON body"},
		{"trailing data", `{} {}`, "trailing data"},
		{"wrong root key", `{"rootKey":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`, "rootKey is not the root's private key"},
	} {
		resp, b := f.do(t, http.MethodPost, base+"/rotate", tc.body)
		wantProblem(t, "POST rotate "+tc.name, resp, b, http.StatusBadRequest, tc.detail)
	}
	resp, b := f.do(t, http.MethodPost, base+"/nosuchca/lifecycle/activate", "")
	wantProblem(t, "activate unknown", resp, b, http.StatusNotFound, `no certificate authority "nosuchca"`)
	resp, b = f.do(t, http.MethodPost, base+"/"+oldID+"/lifecycle/activate", "")
	wantProblem(t, "activate the active one", resp, b, http.StatusConflict, "ACTIVE INTERMEDIATE")

	resp, b = f.do(t, http.MethodPost, base+"/rotate", "")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST rotate = %d %s, want 201", resp.StatusCode, b)
	}
	next := decodeCA(t, "POST rotate", b)
	if next.State != store.CAStateNext || next.Active || next.Role != store.RoleIntermediate || !strings.Contains(next.Subject, "Test Intermediate Authority G2") {
		t.Errorf("POST rotate = %+v, want a NEXT, inactive intermediate named G2", next)
	}
	if loc := resp.Header.Get("Location"); loc != base+"/"+next.ID {
		t.Errorf("POST rotate Location = %q, want %q", loc, base+"/"+next.ID)
	}
	resp, b = f.do(t, http.MethodPost, base+"/rotate", "{}")
	wantProblem(t, "POST rotate while staged", resp, b, http.StatusConflict, `"`+next.ID+`" is already staged`)

	// The list shows the states, the next RA included.
	resp, b = f.do(t, http.MethodGet, base, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET list = %d %s", resp.StatusCode, b)
	}
	var list []admin.CertificateAuthority
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, c := range list {
		states[c.Role+"/"+c.State]++
	}
	want := map[string]int{"ROOT/": 1, "INTERMEDIATE/ACTIVE": 1, "RA/ACTIVE": 1, "INTERMEDIATE/NEXT": 1, "RA/NEXT": 1}
	for k, n := range want {
		if states[k] != n {
			t.Errorf("GET list roles/states = %v, want %v", states, want)
			break
		}
	}

	resp, b = f.do(t, http.MethodPost, base+"/"+next.ID+"/lifecycle/activate", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST activate = %d %s, want 200", resp.StatusCode, b)
	}
	if got := decodeCA(t, "POST activate", b); got.State != store.CAStateActive || !got.Active || got.ID != next.ID {
		t.Errorf("POST activate = %+v, want %s ACTIVE", got, next.ID)
	}
	if a.IntermediateID() != next.ID {
		t.Errorf("the running CA issues from %s after activate, want %s", a.IntermediateID(), next.ID)
	}
	resp, b = f.do(t, http.MethodPost, base+"/"+oldID+"/lifecycle/activate", "")
	wantProblem(t, "activate the retired one", resp, b, http.StatusConflict, "RETIRED INTERMEDIATE")
	resp, b = f.do(t, http.MethodPost, base+"/"+a.RootID()+"/lifecycle/activate", "")
	wantProblem(t, "activate the root", resp, b, http.StatusConflict, "ROOT")

	// Delete: the active one is refused, the retired one goes (no
	// certificates were issued, so no force is needed).
	resp, b = f.do(t, http.MethodDelete, base+"/"+next.ID, "")
	wantProblem(t, "DELETE active", resp, b, http.StatusConflict, "active INTERMEDIATE")
	resp, b = f.do(t, http.MethodDelete, base+"/"+oldID+"?force=maybe", "")
	wantProblem(t, "DELETE force=maybe", resp, b, http.StatusBadRequest, "force must be true or false")
	resp, b = f.do(t, http.MethodDelete, base+"/"+oldID, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE retired = %d %s, want 204", resp.StatusCode, b)
	}
	if _, err := f.db.GetCA(ctx, oldID); err == nil {
		t.Errorf("retired intermediate %s still stored after DELETE", oldID)
	}

	// Root key offline: refused without it, accepted with it.
	exported, err := a.ExportRootKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveRootKey(ctx); err != nil {
		t.Fatal(err)
	}
	resp, b = f.do(t, http.MethodPost, base+"/rotate", "")
	wantProblem(t, "POST rotate without the root key", resp, b, http.StatusConflict, "root key was removed")
	body, _ := json.Marshal(map[string]string{"rootKey": string(exported), "keyType": "rsa"})
	resp, b = f.do(t, http.MethodPost, base+"/rotate", string(body))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST rotate with the root key = %d %s, want 201", resp.StatusCode, b)
	}
	third := decodeCA(t, "POST rotate with the root key", b)
	if !strings.Contains(third.Subject, "G3") {
		t.Errorf("third generation subject = %q, want G3", third.Subject)
	}
	// Abandon it.
	resp, b = f.do(t, http.MethodDelete, base+"/"+third.ID, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE next = %d %s, want 204", resp.StatusCode, b)
	}
	keyLine := strings.Split(string(exported), "\n")[1] // first base64 line of the key
	if strings.Contains(audit.String()+f.audit.String()+f.reqlog.String(), keyLine) {
		t.Errorf("a log carries the supplied root key")
	}
	for _, ev := range []string{ca.EventRotate, ca.EventActivate, ca.EventDelete} {
		if !strings.Contains(audit.String(), `"msg":"`+ev+`"`) || !strings.Contains(audit.String(), `"actor":"api"`) {
			t.Errorf("audit log lacks %s by the api:\n%s", ev, audit.String())
		}
	}
}

// TestRotateAPINotConfigured: without a CA lifecycle the routes answer 503.
func TestRotateAPINotConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, b := f.do(t, http.MethodPost, "/api/v1/certificate-authorities/rotate", "")
	wantProblem(t, "POST rotate", resp, b, http.StatusServiceUnavailable, "not configured")
}
