package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// TestInitAndRootOffline runs `scepca init`, exports the root key, removes
// it, and checks that the server still starts and issues from the
// intermediate while the store holds no root key.
func TestInitAndRootOffline(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	kekFile := filepath.Join(t.TempDir(), "kek")
	if _, err := ca.GenerateKEKFile(kekFile); err != nil {
		t.Fatal(err)
	}
	env := testEnv()
	var out, errOut strings.Builder
	args := []string{"--data", data, "--kek-file", kekFile, "--org", "Example Corp", "--key-type", "ecdsa"}
	if err := run(t.Context(), append([]string{"init"}, args...), env, &out, &errOut); err != nil {
		t.Fatalf("init = %v\n%s", err, errOut.String())
	}
	for _, want := range []string{`"Example Corp Root Authority"`, `"Example Corp Intermediate Authority"`, "created RA"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("init output %q lacks %s", out.String(), want)
		}
	}
	if err := run(t.Context(), append([]string{"init"}, args...), env, &out, &errOut); err == nil {
		t.Error("second init succeeded, want an error")
	}

	keyFile := filepath.Join(t.TempDir(), "root-key.pem")
	if err := run(t.Context(), append([]string{"ca", "export-root-key", "--out", keyFile}, args...), env, &out, &errOut); err != nil {
		t.Fatalf("ca export-root-key = %v", err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("exported key mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(keyFile)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("exported key is not PEM: %q", b)
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		t.Errorf("exported key: %v", err)
	}
	if err := run(t.Context(), append([]string{"ca", "remove-root-key"}, args...), env, &out, &errOut); err != nil {
		t.Fatalf("ca remove-root-key = %v", err)
	}
	if err := run(t.Context(), append([]string{"ca", "export-root-key", "--out", keyFile + "2"}, args...), env, &out, &errOut); err == nil {
		t.Error("export after removal succeeded, want an error")
	}

	db, err := bolt.Open(filepath.Join(data, "scepca.db"))
	if err != nil {
		t.Fatal(err)
	}
	cas, err := db.ListCAs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The offline changes are stored audit events, as the API's are.
	events, err := db.ListEvents(t.Context(), store.EventFilter{Types: []string{"certificate_authority."}})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		if e.Actor != "cli" || e.Outcome != store.OutcomeSuccess || e.Target == "" {
			t.Errorf("event %s = actor %q outcome %q target %q, want cli, SUCCESS and a target", e.Type, e.Actor, e.Outcome, e.Target)
		}
		got = append(got, e.Type)
	}
	if want := []string{"certificate_authority.remove_root_key", "certificate_authority.export_root_key", "certificate_authority.init"}; !slices.Equal(got, want) {
		t.Errorf("stored events = %q, want %q (newest first)", got, want)
	}
	for _, c := range cas {
		if c.Role == store.RoleRoot && len(c.KeyCiphertext) != 0 {
			t.Errorf("root %s still has its key in the store", c.ID)
		}
		if c.Role == store.RoleIntermediate && len(c.KeyCiphertext) == 0 {
			t.Errorf("intermediate %s lost its key", c.ID)
		}
	}

	s := startServer(t, "--data", data, "--kek-file", kekFile)
	if s.SCEPURL == "" {
		t.Fatal("server with an offline root did not start")
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"nope"}, testEnv(), &out, &errOut); err == nil || !strings.Contains(errOut.String(), "serve") {
		t.Errorf("run(nope) = %v, usage %q", err, errOut.String())
	}
	if err := run(t.Context(), []string{"version"}, testEnv(), &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "scepca ") {
		t.Errorf("run(version) = %v, %q", err, out.String())
	}
}

func TestEnvFlags(t *testing.T) {
	t.Parallel()
	// SCEPCA_KEK_FILE stands in for --kek-file; a bad value is reported by name.
	err := run(t.Context(), []string{"serve", "--data", t.TempDir()}, testEnv("SCEPCA_KEK_FILE", "/nonexistent/kek"), &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/kek") {
		t.Errorf("serve with SCEPCA_KEK_FILE = %v, want an error naming the file", err)
	}
	err = run(t.Context(), []string{"serve", "--dev", "--data", t.TempDir()}, testEnv("SCEPCA_CERT_VALIDITY", "soon"), &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "SCEPCA_CERT_VALIDITY") {
		t.Errorf("serve with SCEPCA_CERT_VALIDITY=soon = %v, want an error naming the variable", err)
	}
}
