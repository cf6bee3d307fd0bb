package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeFirstStart(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	if !strings.HasPrefix(s.SCEPURL, s.URL+"/scep/") || s.Secret == "" {
		t.Fatalf("banner: SCEP URL %q, secret %q", s.SCEPURL, s.Secret)
	}
	fi, err := os.Stat(filepath.Join(s.Data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode = %v, want 0600", fi.Mode().Perm())
	}
	resp := s.API(t, http.MethodGet, "/api/v1/device-integrations", nil)
	var list []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("list integrations = %d, %v", resp.StatusCode, err)
	}
	if len(list) != 1 || list[0]["scepUrl"] != s.SCEPURL || list[0]["secretKey"] != nil {
		t.Errorf("integrations = %v, want the dev integration without its secret", list)
	}
	if strings.Contains(s.Stderr.String(), s.Secret) {
		t.Error("the secret appears in the server log")
	}
}

func TestServeRestartKeepsCA(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s1 := startServer(t, "--data", data)
	first := s1.SCEPURL
	if err := s1.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	s2 := startServer(t, "--data", data)
	if s2.SCEPURL[len(s2.URL):] != first[len(s1.URL):] {
		t.Errorf("dev integration changed across restart: %q then %q", first, s2.SCEPURL)
	}
	if strings.Contains(s2.Stdout.String(), "initialised") {
		t.Error("second start initialised the CA again")
	}
}

func TestServeNeedsKEK(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, testEnv(), &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "key-encryption key") {
		t.Errorf("serve without KEK = %v, want a key-encryption key error", err)
	}
}
