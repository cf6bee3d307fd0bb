package main

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodePlist parses an XML property list with Python's plistlib, an
// independent parser, and returns it as JSON values; data becomes
// {"$data": base64}.
func decodePlist(t *testing.T, path string) map[string]any {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		missingClient(t, "python3 not found (plistlib parses the profile): %v", err)
	}
	const script = `
import base64, json, plistlib, sys
def conv(v):
    if isinstance(v, bytes):
        return {"$data": base64.b64encode(v).decode()}
    if isinstance(v, dict):
        return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list):
        return [conv(x) for x in v]
    return v
with open(sys.argv[1], "rb") as f:
    print(json.dumps(conv(plistlib.load(f, fmt=plistlib.FMT_XML))))
`
	out, err := exec.CommandContext(t.Context(), py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib.load(%s): %v\n%s", path, err, out)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("plistlib output %q: %v", out, err)
	}
	return v
}

func plistData(t *testing.T, v any) []byte {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not <data>", v)
	}
	b, err := base64.StdEncoding.DecodeString(m["$data"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// intermediateDER downloads the active intermediate through the admin API.
func intermediateDER(t *testing.T, s *testServer) []byte {
	t.Helper()
	var cas []struct {
		ID, Role string
		Active   bool
	}
	if err := json.NewDecoder(s.API(t, http.MethodGet, "/api/v1/certificate-authorities", nil).Body).Decode(&cas); err != nil {
		t.Fatal(err)
	}
	for _, c := range cas {
		if c.Role == "INTERMEDIATE" && c.Active {
			b, err := io.ReadAll(s.API(t, http.MethodGet, "/api/v1/certificate-authorities/"+c.ID+"/cert?format=der", nil).Body)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatal("no active intermediate")
	return nil
}

func runProfileCmd(t *testing.T, s *testServer, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(s.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	full := append([]string{"profile", "mobileconfig", "--server", s.URL, "--token-file", tokenFile}, args...)
	err = run(t.Context(), full, testEnv(env...), &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestProfileMobileconfigStatic writes the profile of a STATIC integration,
// parses it with plistlib, checks the keys Apple reads, and enrolls with
// scepclient using the profile's URL and Challenge.
func TestProfileMobileconfigStatic(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := strings.TrimPrefix(s.SCEPURL, s.URL+"/scep/")
	out := filepath.Join(t.TempDir(), "scepca.mobileconfig")
	if _, stderr, err := runProfileCmd(t, s, []string{"SCEPCA_CHALLENGE", s.Secret}, "--integration", id, "--out", out, "--org", "Example Corp"); err != nil {
		t.Fatalf("profile mobileconfig = %v\n%s", err, stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("profile file mode = %v, %v; want 0600 (it holds the secret)", fi.Mode(), err)
	}
	p := decodePlist(t, out)
	for k, want := range map[string]any{"PayloadType": "Configuration", "PayloadScope": "User", "PayloadVersion": float64(1), "PayloadIdentifier": "com.scepca." + id, "PayloadOrganization": "Example Corp"} {
		if p[k] != want {
			t.Errorf("profile %s = %v, want %v", k, p[k], want)
		}
	}
	content := p["PayloadContent"].([]any)
	if len(content) != 2 {
		t.Fatalf("profile has %d payloads, want 2 (intermediate, SCEP)", len(content))
	}
	inter, scep := content[0].(map[string]any), content[1].(map[string]any)
	der := intermediateDER(t, s)
	if inter["PayloadType"] != "com.apple.security.pkcs1" || !cmp.Equal(plistData(t, inter["PayloadContent"]), der) {
		t.Errorf("certificate payload %v: want com.apple.security.pkcs1 with the intermediate's DER", inter["PayloadType"])
	}
	if scep["PayloadType"] != "com.apple.security.scep" {
		t.Errorf("second payload type %v, want com.apple.security.scep", scep["PayloadType"])
	}
	for _, pl := range []map[string]any{p, inter, scep} {
		if u, _ := pl["PayloadUUID"].(string); len(u) != 36 {
			t.Errorf("PayloadUUID %q of %v is not a UUID", u, pl["PayloadType"])
		}
	}
	sc := scep["PayloadContent"].(map[string]any)
	fp := sha1.Sum(der)
	want := map[string]any{
		"URL": s.SCEPURL, "Name": "Default desktop (dev)", "Challenge": s.Secret,
		"Keysize": float64(2048), "Key Type": "RSA", "Key Usage": float64(1),
		"KeyIsExtractable": false, "AllowAllAppsAccess": true, "Retries": float64(3), "RetryDelay": float64(10),
		"Subject":       []any{[]any{[]any{"CN", "$USERNAME managementAttestation $UDID"}}},
		"CAFingerprint": map[string]any{"$data": base64.StdEncoding.EncodeToString(fp[:])},
	}
	if diff := cmp.Diff(want, sc); diff != "" {
		t.Errorf("SCEP payload content (-want +got):\n%s", diff)
	}

	// The URL and Challenge in the profile enroll a real client.
	lookClient(t, "scepclient")
	enrollScepclient(t, t.TempDir(), scepclientRun{URL: sc["URL"].(string), Challenge: sc["Challenge"].(string), CN: aliceCN})
}

// TestProfileMobileconfigDynamic: a DYNAMIC integration's profile has no
// Challenge (the UEM fetches one per device) and says so.
func TestProfileMobileconfigDynamic(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	in := createDynamic(t, s, "")
	stdout, stderr, err := runProfileCmd(t, s, nil, "--integration", in.ID, "--subject", "CN=$EMAIL managementAttestation $UDID,O=Example")
	if err != nil {
		t.Fatalf("profile mobileconfig = %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "has no Challenge key") {
		t.Errorf("stderr lacks the note on the missing challenge:\n%s", stderr)
	}
	path := filepath.Join(t.TempDir(), "p.mobileconfig")
	if err := os.WriteFile(path, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := decodePlist(t, path)["PayloadContent"].([]any)[1].(map[string]any)["PayloadContent"].(map[string]any)
	if _, ok := sc["Challenge"]; ok {
		t.Error("DYNAMIC profile carries a Challenge")
	}
	if sc["URL"] != in.SCEPURL {
		t.Errorf("URL = %v, want %s", sc["URL"], in.SCEPURL)
	}
	wantSubject := []any{[]any{[]any{"CN", "$EMAIL managementAttestation $UDID"}}, []any{[]any{"O", "Example"}}}
	if diff := cmp.Diff(wantSubject, sc["Subject"]); diff != "" {
		t.Errorf("Subject (-want +got):\n%s", diff)
	}
}

// TestProfileMobileconfigErrors: every refusal names its cause.
func TestProfileMobileconfigErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := strings.TrimPrefix(s.SCEPURL, s.URL+"/scep/")
	dyn := createDynamic(t, s, "")
	resp := s.API(t, http.MethodPost, "/api/v1/device-integrations", strings.NewReader(`{"platform":"IOS","name":"phones"}`))
	var mobile struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&mobile); err != nil || mobile.ID == "" {
		t.Fatalf("create IOS integration = %d, %v", resp.StatusCode, err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"static without challenge", nil, []string{"--integration", id}, "is STATIC: give --challenge"},
		{"dynamic with challenge", nil, []string{"--integration", dyn.ID, "--challenge", "x"}, "--challenge does not apply"},
		{"mobile", nil, []string{"--integration", mobile.ID}, "only DESKTOP integrations"},
		{"unknown integration", []string{"SCEPCA_CHALLENGE", "x"}, []string{"--integration", "intNOPE"}, "404"},
		{"bad subject", []string{"SCEPCA_CHALLENGE", "x"}, []string{"--integration", id, "--subject", "managementAttestation"}, "want comma-separated TYPE=value"},
		{"unknown subject type", []string{"SCEPCA_CHALLENGE", "x"}, []string{"--integration", id, "--subject", "XX=1"}, `unknown attribute type "XX"`},
		{"no integration", nil, nil, "--integration is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runProfileCmd(t, s, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("profile mobileconfig %v = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
	// A wrong token is refused by the server, and said so.
	var out, errOut syncBuffer
	err := run(t.Context(), []string{"profile", "mobileconfig", "--server", s.URL, "--integration", id, "--challenge", "x"}, testEnv("SCEPCA_TOKEN", "wrong"), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("profile mobileconfig with a wrong token = %v, want a 401 error", err)
	}
	err = run(t.Context(), []string{"profile", "mobileconfig", "--server", s.URL, "--integration", id, "--data", t.TempDir()}, testEnv(), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Errorf("profile mobileconfig without a token = %v, want the no-token error", err)
	}
}
