package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cliToken is what `scepca token create` prints.
type cliToken struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Scope     string `json:"scope"`
	ExpiresAt string `json:"expiresAt"`
	Token     string `json:"token"`
}

// apiWith sends an API request with token and returns the status.
func apiWith(t *testing.T, s *testServer, token, method, path string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTokenAndLogsCLI: `scepca token` creates the first extra tokens while
// serve holds the bbolt file (through the API, with the bootstrap token), a
// VERIFY token reaches only the verifier, deletion locks a token out, and
// `scepca logs` reads the events back after a restart.
func TestTokenAndLogsCLI(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServer(t, "--data", data)

	verify := cliJSON[cliToken](t, s, "token", "create", "--scope", "verify", "--name", "idp sidecar")
	if verify.Scope != "VERIFY" || !strings.HasPrefix(verify.Token, "scepca_"+verify.ID+"_") || verify.ExpiresAt != "" {
		t.Fatalf("token create --scope verify = %+v, want a VERIFY token without expiry", verify)
	}
	tokenFile := filepath.Join(t.TempDir(), "ci-token")
	r := cli(t, s, "token", "create", "--scope", "ADMIN", "--name", "ci", "--expires", "720h", "--token-out", tokenFile)
	if r.err != nil {
		t.Fatalf("token create --token-out = %v\n%s", r.err, r.stderr)
	}
	var adminTok cliToken
	if err := json.Unmarshal([]byte(r.stdout), &adminTok); err != nil || adminTok.Token != "" || adminTok.ExpiresAt == "" || adminTok.Scope != "ADMIN" {
		t.Errorf("token create --token-out printed %s (%v), want the token's details without the token", r.stdout, err)
	}
	fi, err := os.Stat(tokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, fi)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	ciToken := strings.TrimSpace(string(b))

	if got := apiWith(t, s, verify.Token, http.MethodPost, "/api/v1/attestation/nonces"); got != http.StatusOK {
		t.Errorf("nonce with the VERIFY token = %d, want 200", got)
	}
	if got := apiWith(t, s, verify.Token, http.MethodGet, "/api/v1/device-integrations"); got != http.StatusForbidden {
		t.Errorf("integrations with the VERIFY token = %d, want 403", got)
	}
	r = cliEnv(t, testEnv("SCEPCA_SERVER", s.URL, "SCEPCA_TOKEN", verify.Token), "token", "list")
	if r.err == nil || !strings.Contains(r.err.Error(), "HTTP 403") {
		t.Errorf("token list with the VERIFY token = %v, want the 403", r.err)
	}

	// The CI token (an API token, from SCEPCA_TOKEN) lists and deletes.
	ci := testEnv("SCEPCA_SERVER", s.URL, "SCEPCA_TOKEN", ciToken)
	r = cliEnv(t, ci, "token", "list", "--output", "table")
	if r.err != nil || !strings.Contains(r.stdout, "idp sidecar") || !strings.Contains(r.stdout, "VERIFY") || strings.Contains(r.stdout, verify.Token[len(verify.Token)-43:]) {
		t.Errorf("token list --output table = %v\n%s\nwant both tokens' details, no token", r.err, r.stdout)
	}
	r = cliEnv(t, ci, "token", "delete", verify.ID)
	if r.err != nil || !strings.Contains(r.stderr, "deleted token "+verify.ID) {
		t.Errorf("token delete = %v, stderr %q", r.err, r.stderr)
	}
	if got := apiWith(t, s, verify.Token, http.MethodPost, "/api/v1/attestation/nonces"); got != http.StatusUnauthorized {
		t.Errorf("nonce with the deleted token = %d, want 401", got)
	}
	cliFails(t, s, "no token", "token", "delete", verify.ID)
	cliFails(t, s, "--scope must be admin or verify", "token", "create", "--scope", "root", "--name", "x")
	cliFails(t, s, "--name is required", "token", "create", "--scope", "admin")

	// Stopping flushes the events; a restart reads them from the store.
	if err := s.Stop(); err != nil {
		t.Fatalf("graceful stop = %v", err)
	}
	s = startServer(t, "--data", data)
	events := cliJSON[[]map[string]any](t, s, "logs", "--type", "token.", "--since", "1h")
	var got []string
	for _, e := range events {
		got = append(got, e["eventType"].(string)+" by "+e["actor"].(string))
	}
	want := []string{"token.delete by token:" + adminTok.ID, "token.create by admin-token", "token.create by admin-token"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("logs --type token. = %v, want %v", got, want)
	}
	r = cli(t, s, "logs", "--type", "token.create,token.delete", "--limit", "1")
	if r.err != nil || !strings.Contains(r.stderr, "more events: add --cursor ") || strings.Count(r.stdout, `"eventType"`) != 1 {
		t.Errorf("logs --limit 1 = %v\n%s\n%s\nwant one event and the next cursor", r.err, r.stdout, r.stderr)
	}
	r = cli(t, s, "logs", "--type", "token.", "--limit", "1", "--all", "--output", "table")
	if r.err != nil || strings.Count(r.stdout, "token.") != 3 || !strings.HasPrefix(r.stdout, "TIME") {
		t.Errorf("logs --all --output table = %v\n%s", r.err, r.stdout)
	}
	all := cli(t, s, "logs", "--all", "--limit", "1000")
	for what, secret := range map[string]string{"VERIFY token": verify.Token, "CI token": ciToken, "admin token": s.Token} {
		if strings.Contains(all.stdout, secret) {
			t.Errorf("the audit log contains the %s", what)
		}
	}
	cliFails(t, s, "--since", "logs", "--since", "last tuesday")
	cliFails(t, s, "limit must be a whole number", "logs", "--limit", "5000")
}
