package main

// End-to-end tests of the attestation verifier (PROTOCOLS.md §5 items
// 18-20): certificates enrolled through SCEP by Debian's scepclient (RSA)
// and by the Go client (ECDSA), proofs signed by openssl — an
// implementation independent of ours — against `scepca serve`.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/client"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
	"github.com/scepca/scepca/store/bolt"
)

// attestClient is the Go verifier client for s.
func attestClient(s *testServer) *client.Client {
	return &client.Client{URL: s.URL, Token: s.Token}
}

// nonce asks s for a nonce.
func nonce(t *testing.T, s *testServer) string {
	t.Helper()
	n, err := attestClient(s).Nonce(t.Context())
	if err != nil {
		t.Fatalf("POST nonces: %v", err)
	}
	return n.Nonce
}

// opensslSign signs attest.Message(nonce, deviceID) with openssl: args
// are a "dgst" or "pkeyutl" command line without its input and output
// (pkeyutl signs a digest, which openssl dgst -binary makes first).
func opensslSign(t *testing.T, dir, nonce, deviceID string, args ...string) []byte {
	t.Helper()
	openssl := lookClient(t, "openssl")
	msg := filepath.Join(dir, "msg.bin")
	if err := os.WriteFile(msg, attest.Message(nonce, deviceID), 0o600); err != nil {
		t.Fatal(err)
	}
	sig := filepath.Join(dir, "sig.bin")
	cmd := append([]string{}, args...)
	switch args[0] {
	case "dgst":
		cmd = append(cmd, "-out", sig, msg)
	case "pkeyutl":
		digest := filepath.Join(dir, "msg.sha256")
		if out, code := runClient(t, dir, openssl, "dgst", "-sha256", "-binary", "-out", digest, msg); code != 0 {
			t.Fatalf("openssl dgst -binary = exit %d: %s", code, out)
		}
		cmd = append(cmd, "-in", digest, "-out", sig)
	default:
		t.Fatalf("opensslSign(%s): want dgst or pkeyutl", args[0])
	}
	if out, code := runClient(t, dir, openssl, cmd...); code != 0 {
		t.Fatalf("openssl %s = exit %d: %s", strings.Join(cmd, " "), code, out)
	}
	b, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyRaw posts a proof as JSON, as an identity provider would, and
// returns the device context.
func verifyRaw(t *testing.T, s *testServer, req *attest.VerifyRequest) *attest.DeviceContext {
	t.Helper()
	dc, err := attestClient(s).Verify(t.Context(), req)
	if err != nil {
		t.Fatalf("POST verify: %v", err)
	}
	return dc
}

func desktopRequest(nonce, deviceID string, cert *x509.Certificate, sig []byte, alg string) *attest.VerifyRequest {
	return &attest.VerifyRequest{
		Nonce: nonce, DeviceID: deviceID, Platform: attest.PlatformMacOS,
		Certificate: base64.StdEncoding.EncodeToString(cert.Raw), Signature: base64.StdEncoding.EncodeToString(sig),
		SignatureAlgorithm: alg,
	}
}

func wantContext(t *testing.T, what string, dc *attest.DeviceContext, reason string) {
	t.Helper()
	if dc.Reason != reason || dc.Managed != (reason == attest.ReasonManaged) {
		t.Errorf("%s = managed %v, %s (%s), want %s", what, dc.Managed, dc.Reason, dc.Detail, reason)
	}
}

// enrollECDSA enrolls an ECDSA P-256 key through SCEP with the Go client
// (the request's signer stays RSA: the reply is encrypted to it) and
// writes the key as PEM (SEC 1) for openssl.
func enrollECDSA(t *testing.T, s *testServer, dir, cn string) (*x509.Certificate, crypto.Signer, string) {
	t.Helper()
	key := testpki.NewECKey(t, elliptic.P256())
	csr, err := scepclient.CSR(key, pkix.Name{CommonName: cn}, s.Secret)
	if err != nil {
		t.Fatal(err)
	}
	r, err := scepDo(t, s.SCEPURL, s.SCEPURL, scepclient.TypePKCSReq, csr)
	if err != nil || r.Status != scepclient.StatusSuccess || len(r.Certificates) != 1 {
		t.Fatalf("enroll ECDSA = %+v, %v, want SUCCESS", r, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "ec-key.pem")
	writePEMFile(t, keyPath, "EC PRIVATE KEY", der)
	return r.Certificates[0], key, keyPath
}

// TestAttestOpenSSL is PROTOCOLS.md §5 item 18: a key enrolled by
// scepclient signs nonces with openssl (PKCS #1 v1.5 and PSS), an ECDSA key
// enrolled by the Go client signs with openssl pkeyutl; each is managed,
// and a replayed proof is refused. Item 19's binding follows.
func TestAttestOpenSSL(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	lookClient(t, "openssl")
	s := startServer(t, "--log-level", "info")
	dir := t.TempDir()
	cert := enrollScepclient(t, dir, scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN, Fingerprint: sha256Hex(listCAs(t, s)["INTERMEDIATE"].Cert)})
	key := filepath.Join(dir, "key.pem")
	const device = "UDID123"

	tests := []struct {
		name string
		alg  string
		args []string
	}{
		{"openssl dgst PKCS#1 v1.5", attest.AlgRSAPKCS1SHA256, []string{"dgst", "-sha256", "-sign", key}},
		{"openssl dgst PSS, salt = digest length", attest.AlgRSAPSSSHA256, []string{"dgst", "-sha256", "-sign", key, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"}},
		{"openssl dgst PSS, default salt", attest.AlgRSAPSSSHA256, []string{"dgst", "-sha256", "-sign", key, "-sigopt", "rsa_padding_mode:pss"}},
		{"openssl pkeyutl PKCS#1 v1.5", attest.AlgRSAPKCS1SHA256, []string{"pkeyutl", "-sign", "-inkey", key, "-pkeyopt", "digest:sha256"}},
		{"openssl pkeyutl PSS", attest.AlgRSAPSSSHA256, []string{"pkeyutl", "-sign", "-inkey", key, "-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pss"}},
	}
	var replay *attest.VerifyRequest
	for _, tc := range tests {
		n := nonce(t, s)
		req := desktopRequest(n, device, cert, opensslSign(t, dir, n, device, tc.args...), tc.alg)
		dc := verifyRaw(t, s, req)
		wantContext(t, "verify("+tc.name+")", dc, attest.ReasonManaged)
		if dc.User != "alice" || dc.Certificate == nil || dc.Certificate.Serial != strings.ToUpper(cert.SerialNumber.Text(16)) {
			t.Errorf("verify(%s) = %+v, want user alice and the enrolled serial", tc.name, dc)
		}
		replay = req
	}
	wantContext(t, "verify(replayed proof)", verifyRaw(t, s, replay), attest.ReasonNonceUsed)

	// ECDSA, signed by openssl pkeyutl and by openssl dgst.
	ecCert, _, ecKey := enrollECDSA(t, s, dir, "bob managementAttestation MAC-EC")
	for _, args := range [][]string{
		{"pkeyutl", "-sign", "-inkey", ecKey},
		{"dgst", "-sha256", "-sign", ecKey},
	} {
		n := nonce(t, s)
		dc := verifyRaw(t, s, desktopRequest(n, "MAC-EC", ecCert, opensslSign(t, dir, n, "MAC-EC", args...), attest.AlgECDSASHA256))
		wantContext(t, "verify(ECDSA, openssl "+args[0]+")", dc, attest.ReasonManaged)
	}

	// Item 19: bound to the first device, refused from another.
	n := nonce(t, s)
	dc := verifyRaw(t, s, desktopRequest(n, "OTHER-DEVICE", cert, opensslSign(t, dir, n, "OTHER-DEVICE", "dgst", "-sha256", "-sign", key), attest.AlgRSAPKCS1SHA256))
	wantContext(t, "verify(other device)", dc, attest.ReasonCertBoundToOther)

	// A signature over one device ID does not prove another.
	n = nonce(t, s)
	dc = verifyRaw(t, s, desktopRequest(n, device, cert, opensslSign(t, dir, n, "UDID999", "dgst", "-sha256", "-sign", key), attest.AlgRSAPKCS1SHA256))
	wantContext(t, "verify(signature over another device ID)", dc, attest.ReasonBadSignature)

	// The request log carries the outcome of each proof.
	if !strings.Contains(s.Stderr.String(), `"reason":"CERT_BOUND_TO_OTHER_DEVICE"`) {
		t.Errorf("server log lacks the verify outcome")
	}
}

// TestAttestNonceAcrossRestart: a nonce is single use across a restart and
// across kill -9: the consume is on disk before the answer.
func TestAttestNonceAcrossRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServer(t, "--data", data)
	cert, key2, _ := enrollECDSA(t, s, t.TempDir(), "carol managementAttestation R1")
	used, err := client.SignDesktop(key2, cert, nonce(t, s), "R1", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "verify(before restart)", verifyRaw(t, s, used), attest.ReasonManaged)
	fresh, err := client.SignDesktop(key2, cert, nonce(t, s), "R1", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	s = startServer(t, "--data", data)
	wantContext(t, "verify(used nonce, after restart)", verifyRaw(t, s, used), attest.ReasonNonceUsed)
	wantContext(t, "verify(unused nonce, after restart)", verifyRaw(t, s, fresh), attest.ReasonManaged)
	wantContext(t, "verify(it again)", verifyRaw(t, s, fresh), attest.ReasonNonceUsed)
	crashed, err := client.SignDesktop(key2, cert, nonce(t, s), "R1", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	// kill -9 right after a successful verify: still used afterwards.
	p, _ := startProcess(t, data)
	wantContext(t, "verify(process)", verifyRaw(t, p, crashed), attest.ReasonManaged)
	if err := p.Stop(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	p, _ = startProcess(t, data)
	wantContext(t, "verify(after kill -9)", verifyRaw(t, p, crashed), attest.ReasonNonceUsed)
}

// TestAttestLifecycleStates is PROTOCOLS.md §5 item 19's lifecycle, end to
// end, with each state set through attest.Lifecycle on the store while the
// server is stopped and across restarts; TestCLIDevices drives the same
// changes through the admin API.
func TestAttestLifecycleStates(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServer(t, "--data", data)
	cert, key, _ := enrollECDSA(t, s, t.TempDir(), "dan managementAttestation LC")
	attestOnce := func(s *testServer) *attest.DeviceContext {
		dc, err := attestClient(s).AttestDesktop(t.Context(), key, cert, "LC", attest.PlatformWindows, "")
		if err != nil {
			t.Fatal(err)
		}
		return dc
	}
	wantContext(t, "verify(ACTIVE)", attestOnce(s), attest.ReasonManaged)
	serial := strings.ToUpper(cert.SerialNumber.Text(16))

	steps := []struct {
		name       string
		change     func(*attest.Lifecycle) error
		reason     string
		certStatus string
	}{
		{"suspend", func(l *attest.Lifecycle) error { _, err := l.Suspend(t.Context(), "LC"); return err }, attest.ReasonDeviceSuspended, store.CertIssued},
		{"unsuspend", func(l *attest.Lifecycle) error { _, err := l.Unsuspend(t.Context(), "LC"); return err }, attest.ReasonManaged, store.CertIssued},
		{"deactivate", func(l *attest.Lifecycle) error { _, err := l.Deactivate(t.Context(), "LC"); return err }, attest.ReasonCertOnHold, store.CertOnHold},
		{"activate", func(l *attest.Lifecycle) error { _, err := l.Activate(t.Context(), "LC"); return err }, attest.ReasonManaged, store.CertIssued},
		{"delete", func(l *attest.Lifecycle) error { _, err := l.Delete(t.Context(), "LC"); return err }, attest.ReasonCertRevoked, store.CertRevoked},
	}
	for _, st := range steps {
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(filepath.Join(data, "scepca.db"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := attest.NewLifecycle(db, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.change(l); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		c, err := db.GetCertificate(t.Context(), serial)
		if err != nil || c.Status != st.certStatus {
			t.Errorf("after %s the certificate is %v (%v), want %s", st.name, c, err, st.certStatus)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		s = startServer(t, "--data", data)
		wantContext(t, "verify(after "+st.name+")", attestOnce(s), st.reason)
	}
}

// TestAttestBYO is PROTOCOLS.md §5 item 19's uploaded issuer: an
// intermediate uploaded as PEM with curl's form Content-Type, a
// certificate it issued signed by openssl is managed, one listed in its
// CRL (served by an httptest server) is not.
func TestAttestBYO(t *testing.T) {
	t.Parallel()
	lookClient(t, "openssl")
	s := startServer(t)
	byo := testpki.CA(t)
	crl := &crlServer{}
	srv := httptest.NewServer(crl)
	t.Cleanup(srv.Close)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/api/v1/certificate-authorities",
		bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: byo.Intermediate.Raw})))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // what curl --data-binary sends
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload = %d %s, want 201", resp.StatusCode, body)
	}

	dir := t.TempDir()
	issue := func(name string) (*x509.Certificate, string) {
		k := testpki.NewECKey(t, elliptic.P256())
		c := byo.Issue(t, k.Public(), "eve managementAttestation "+name, testpki.WithTemplate(func(c *x509.Certificate) {
			c.CRLDistributionPoints = []string{srv.URL + "/byo.crl"}
		}))
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".pem")
		writePEMFile(t, p, "PRIVATE KEY", der)
		return c, p
	}
	good, goodKey := issue("GOOD")
	listed, listedKey := issue("LISTED")
	crl.set(t, byo, listed.SerialNumber)

	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		key    string
		reason string
	}{
		{"GOOD", good, goodKey, attest.ReasonManaged},
		{"LISTED", listed, listedKey, attest.ReasonCertRevoked},
	} {
		n := nonce(t, s)
		dc := verifyRaw(t, s, desktopRequest(n, tc.name, tc.cert, opensslSign(t, dir, n, tc.name, "dgst", "-sha256", "-sign", tc.key), attest.AlgECDSASHA256))
		wantContext(t, "verify(BYO "+tc.name+")", dc, tc.reason)
	}
}

// crlServer serves a CRL signed by a BYO intermediate.
type crlServer struct{ der []byte }

func (c *crlServer) set(t *testing.T, h *testpki.Hierarchy, serials ...*big.Int) {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now(), ReasonCode: 1})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: entries,
	}, h.Intermediate, h.IntermediateKey)
	if err != nil {
		t.Fatal(err)
	}
	c.der = der
}

func (c *crlServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/pkix-crl")
	_, _ = w.Write(c.der)
}

// TestAttestCLI: `scepca attest` exits 0 exactly when managed, prints the
// device context, and the mobile proof works with a hint file; the hint is
// in no server log and no response but its creation's.
func TestAttestCLI(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	s := startServer(t, "--log-level", "debug")
	dir := t.TempDir()
	cert, _, keyPath := enrollECDSA(t, s, dir, "frank managementAttestation CLI-1")
	certPath := filepath.Join(dir, "cert.pem")
	writePEMFile(t, certPath, "CERTIFICATE", cert.Raw)
	tokenPath := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenPath, []byte(s.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	resp := s.API(t, http.MethodPost, "/api/v1/device-integrations", strings.NewReader(`{"name":"phones","platform":"IOS"}`))
	var ios struct {
		ID        string `json:"id"`
		SecretKey string `json:"secretKey"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ios); err != nil || resp.StatusCode != http.StatusCreated || ios.SecretKey == "" {
		t.Fatalf("create IOS integration = %d, %v", resp.StatusCode, err)
	}
	hintPath := filepath.Join(dir, "hint")
	if err := os.WriteFile(hintPath, []byte(ios.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongHint := filepath.Join(dir, "wrong-hint")
	if err := os.WriteFile(wrongHint, []byte("not-the-hint-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	common := []string{"--server", s.URL, "--token-file", tokenPath}
	tests := []struct {
		name   string
		args   []string
		code   int
		reason string // "" when no context is printed
	}{
		{"desktop managed", append([]string{"attest", "desktop", "--cert", certPath, "--key", keyPath, "--device-id", "CLI-1", "--platform", "WINDOWS"}, common...), 0, attest.ReasonManaged},
		{"desktop, another device", append([]string{"attest", "desktop", "--cert", certPath, "--key", keyPath, "--device-id", "CLI-2"}, common...), 1, attest.ReasonCertBoundToOther},
		{"desktop, missing key", append([]string{"attest", "desktop", "--cert", certPath, "--device-id", "CLI-1"}, common...), 1, ""},
		{"desktop, wrong token", []string{"attest", "desktop", "--cert", certPath, "--key", keyPath, "--device-id", "CLI-1", "--server", s.URL, "--token-file", hintPath}, 1, ""},
		{"mobile managed", append([]string{"attest", "mobile", "--integration", ios.ID, "--hint-file", hintPath, "--device-id", "iphone-cli"}, common...), 0, attest.ReasonManaged},
		{"mobile, wrong hint", append([]string{"attest", "mobile", "--integration", ios.ID, "--hint-file", wrongHint, "--device-id", "iphone-cli"}, common...), 1, attest.ReasonHintMismatch},
		{"mobile, plain hint not allowed", append([]string{"attest", "mobile", "--integration", ios.ID, "--hint-file", hintPath, "--device-id", "iphone-cli", "--plain-hint"}, common...), 1, attest.ReasonPlainHintNotAllowed},
		{"no mode", []string{"attest"}, 1, ""},
	}
	// In order, not in parallel: the first desktop proof binds the
	// certificate that the second then presents from another device.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tc.args...)
			cmd.Env = clientEnv(dir)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := errors.AsType[*exec.ExitError](err); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("scepca %s = exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, stdout.String(), stderr.String())
			}
			if tc.reason == "" {
				if stdout.Len() != 0 {
					t.Errorf("stdout = %s, want nothing without a device context", stdout.String())
				}
				return
			}
			var dc attest.DeviceContext
			if err := json.Unmarshal(stdout.Bytes(), &dc); err != nil || dc.Reason != tc.reason {
				t.Errorf("stdout = %s (%v), want a device context with reason %s", stdout.String(), err, tc.reason)
			}
			if strings.Contains(stdout.String()+stderr.String(), ios.SecretKey) {
				t.Errorf("the CLI printed the managementHint")
			}
		})
	}
	if strings.Contains(s.Stderr.String(), ios.SecretKey) || strings.Contains(s.Stdout.String(), ios.SecretKey) {
		t.Error("the server log contains the managementHint")
	}
}
