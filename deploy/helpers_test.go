package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// scepcaBinary builds cmd/scepca of the enclosing module once per run.
func scepcaBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scepca-deploy-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "scepca")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/scepca")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("go build ./cmd/scepca: %v\n%s", binErr, binPath)
	}
	return binPath
}

// requireTool returns the path of a tool, skipping the test when it is
// missing unless SCEPCA_REQUIRE_CLIENTS=1 (make test) makes that a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SCEPCA_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("%s not found (SCEPCA_REQUIRE_CLIENTS=1): %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

// configCheck runs `scepca config check` on the JSON config body, with the
// files it names (TLS keypair, KEK, data) replaced by real ones through
// flags, which win over the file. It returns the command's output.
func configCheck(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "scepca.json")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeKeyPair(t, dir)
	kek := filepath.Join(dir, "kek")
	if err := os.WriteFile(kek, []byte(strings.Repeat("5a", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), scepcaBinary(t), "config", "check", "--config", cfg,
		"--tls-cert", certFile, "--tls-key", keyFile, "--kek-file", kek, "--data", filepath.Join(dir, "data"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "configuration OK") {
		t.Fatalf("scepca config check: %v\n%s", err, out)
	}
	return string(out)
}

func writeKeyPair(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "scepca"}, DNSNames: []string{"scepca.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
