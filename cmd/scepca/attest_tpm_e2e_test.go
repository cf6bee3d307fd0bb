package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/tpm/swtpmtest"
	"github.com/scepca/scepca/internal/scepclient"
)

// TestAttestTPMCLI (issue 6): `scepca attest tpm-key` creates a signing key
// in a swtpm and a CSR signed by it; that CSR is enrolled through SCEP in an
// integration that requires a hardware key; `scepca attest desktop --tpm`
// then signs the proof in the TPM and sends evidence certified by a
// restricted AK over the nonce: managed and hardwareBacked. Another AK for
// the same device is refused (the first AK is pinned), and the TPM key file
// does not work as a software key.
func TestAttestTPMCLI(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	s := startServer(t)
	sock := swtpmtest.Start(t)
	dir := t.TempDir()
	tokenPath := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenPath, []byte(s.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resp := s.API(t, http.MethodPost, "/api/v1/device-integrations",
		strings.NewReader(`{"name":"tpm laptops","platform":"DESKTOP","challengeType":"STATIC","requireHardwareKey":true}`))
	var in struct {
		SCEPURL            string `json:"scepUrl"`
		SecretKey          string `json:"secretKey"`
		RequireHardwareKey bool   `json:"requireHardwareKey"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil || resp.StatusCode != http.StatusCreated || !in.RequireHardwareKey {
		t.Fatalf("create DESKTOP integration = %d, %+v, %v", resp.StatusCode, in, err)
	}
	challengePath := filepath.Join(dir, "challenge")
	if err := os.WriteFile(challengePath, []byte(in.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (int, string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = clientEnv(dir)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			return ee.ExitCode(), stdout.String(), stderr.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, stdout.String(), stderr.String()
	}

	keyPath, csrPath := filepath.Join(dir, "key.tpm"), filepath.Join(dir, "csr.pem")
	if code, out, errOut := run("attest", "tpm-key", "--tpm", sock, "--out", keyPath, "--csr", csrPath,
		"--cn", "gina managementAttestation TPM-1", "--challenge-file", challengePath); code != 0 {
		t.Fatalf("scepca attest tpm-key = exit %d\n%s%s", code, out, errOut)
	}
	csrPEM, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(csrPEM)
	if blk == nil {
		t.Fatalf("%s holds no PEM", csrPath)
	}

	// Enroll the TPM key's CSR through SCEP.
	r, err := scepDo(t, in.SCEPURL, in.SCEPURL, scepclient.TypePKCSReq, blk.Bytes)
	if err != nil || r.Status != scepclient.StatusSuccess || len(r.Certificates) != 1 {
		t.Fatalf("enroll the TPM key = %+v, %v, want SUCCESS", r, err)
	}
	certPath := filepath.Join(dir, "cert.pem")
	writePEMFile(t, certPath, "CERTIFICATE", r.Certificates[0].Raw)

	common := []string{"attest", "desktop", "--cert", certPath, "--key", keyPath, "--device-id", "TPM-1",
		"--platform", "WINDOWS", "--server", s.URL, "--token-file", tokenPath}
	parse := func(what, out string) *attest.DeviceContext {
		t.Helper()
		var dc attest.DeviceContext
		if err := json.Unmarshal([]byte(out), &dc); err != nil {
			t.Fatalf("%s: stdout %q is not a device context: %v", what, out, err)
		}
		return &dc
	}

	code, out, errOut := run(append(common, "--tpm", sock)...)
	dc := parse("TPM proof", out)
	if code != 0 || !dc.Managed || !dc.HardwareBacked || dc.HardwareBackedReason != attest.HardwareTPMKeyCertified || dc.TPMAKName == "" {
		t.Fatalf("TPM proof = exit %d, %+v\n%s", code, dc, errOut)
	}
	if _, err := os.Stat(keyPath + ".ak"); err != nil {
		t.Fatalf("the AK file was not created: %v", err)
	}
	// Again, with the AK loaded from its file.
	code, out, errOut = run(append(common, "--tpm", sock)...)
	if dc2 := parse("TPM proof again", out); code != 0 || !dc2.HardwareBacked || dc2.TPMAKName != dc.TPMAKName {
		t.Fatalf("TPM proof again = exit %d, %+v\n%s", code, dc2, errOut)
	}
	// Another AK of the same TPM: valid evidence, but not the pinned AK.
	code, out, errOut = run(append(common, "--tpm", sock, "--ak", filepath.Join(dir, "other.ak"))...)
	if dc3 := parse("other AK", out); code != 1 || dc3.Reason != attest.ReasonKeyNotHardwareBacked || dc3.HardwareBackedReason != attest.HardwareAKNotPinned {
		t.Fatalf("other AK = exit %d, %+v\n%s", code, dc3, errOut)
	}
	// The TPM key file is no software key.
	if code, out, _ = run(common...); code != 1 || out != "" {
		t.Fatalf("a TPM key file as a software key = exit %d, stdout %q, want exit 1 and no context", code, out)
	}
}
