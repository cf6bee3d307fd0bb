package main

// Helpers for the end-to-end tests that drive real SCEP clients (Debian's
// scepclient, certmonger and its scep-submit helper, openssl) against a
// server started by startServer (PROTOCOLS.md §5).

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
)

// clientTimeout bounds every external client process.
const clientTimeout = 60 * time.Second

func init() {
	// Another test file of this package may own -update; share it then.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "update golden files")
	}
}

// updateGolden reports whether -update was given.
func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// missingClient skips the test, or fails it when SCEPCA_REQUIRE_CLIENTS=1
// (make test sets it, so CI never skips a real-client test).
func missingClient(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("SCEPCA_REQUIRE_CLIENTS") == "1" {
		t.Fatalf("%s (SCEPCA_REQUIRE_CLIENTS=1)", msg)
	}
	t.Skip(msg)
}

// lookClient returns the path of a client binary on PATH, or in the sbin
// directories a user's PATH often lacks (Debian installs certmonger in
// /usr/sbin).
func lookClient(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if err == nil {
			break
		}
		if q, e := exec.LookPath(filepath.Join(dir, name)); e == nil {
			p, err = q, nil
		}
	}
	if err != nil {
		missingClient(t, "%s not found: %v", name, err)
	}
	return p
}

var scepSubmit struct {
	once sync.Once
	path string
	err  error
}

// scepSubmitPath finds certmonger's helper, which is not on PATH, from the
// package's file list.
func scepSubmitPath(t *testing.T) string {
	t.Helper()
	scepSubmit.once.Do(func() {
		dpkg, err := exec.LookPath("dpkg")
		if err != nil {
			scepSubmit.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, dpkg, "-L", "certmonger").Output()
		if err != nil {
			scepSubmit.err = fmt.Errorf("dpkg -L certmonger: %v", err)
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if p := strings.TrimSpace(sc.Text()); filepath.Base(p) == "scep-submit" {
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
					scepSubmit.path = p
					return
				}
			}
		}
		scepSubmit.err = errors.New("dpkg -L certmonger lists no executable scep-submit")
	})
	if scepSubmit.err != nil {
		missingClient(t, "certmonger's scep-submit: %v", scepSubmit.err)
	}
	return scepSubmit.path
}

// clientEnv is the whole environment of a client process: PATH, HOME in
// its own directory, and extra.
func clientEnv(home string, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C"}, extra...)
}

// runClient runs bin in dir with a timeout and returns its combined output
// and exit code; it fails the test only when the process cannot run.
func runClient(t *testing.T, dir, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = clientEnv(dir)
	out, err := cmd.CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out), 0
}

// scepclientRun is one scepclient invocation in dir (key.pem, cert.pem).
type scepclientRun struct {
	URL, Challenge, CN string
	// Fingerprint is the -ca-fingerprint (SHA-256 hex); none when empty.
	Fingerprint string
}

// runScepclient runs Debian's scepclient with -debug in dir.
func runScepclient(t *testing.T, dir string, r scepclientRun) (string, int) {
	t.Helper()
	args := []string{
		"-server-url", r.URL,
		"-challenge", r.Challenge,
		"-private-key", filepath.Join(dir, "key.pem"),
		"-certificate", filepath.Join(dir, "cert.pem"),
		"-cn", r.CN,
		"-debug",
	}
	if r.Fingerprint != "" {
		args = append(args, "-ca-fingerprint", r.Fingerprint)
	}
	return runClient(t, dir, lookClient(t, "scepclient"), args...)
}

// sha256Hex is the SHA-256 hex of a certificate, as -ca-fingerprint takes it.
func sha256Hex(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:])
}

// getCACert fetches GetCACert with the Go client.
// scepDo sends one SCEP message of type typ carrying content to scepURL,
// signed by a fresh self-signed RSA signer (as a device's first request is)
// and encrypted with AES-256-CBC to the CA certificates served at caURL.
func scepDo(t *testing.T, caURL, scepURL, typ string, content []byte) (*scepclient.Reply, error) {
	t.Helper()
	certs, _ := getCACert(t, caURL)
	signerKey := testpki.NewRSAKey(t, 2048)
	signer, err := scepclient.SelfSigned(signerKey, "SCEP SIGNER")
	if err != nil {
		t.Fatal(err)
	}
	return (&scepclient.Client{URL: scepURL}).Do(t.Context(), &scepclient.Message{
		Type: typ, TransactionID: randomTransactionID(t),
		Signer: signer, Key: signerKey, Recipient: scepclient.Recipient(certs), Content: content,
		Params: cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAPKCS1v15},
	})
}

func getCACert(t *testing.T, scepURL string) ([]*x509.Certificate, string) {
	t.Helper()
	certs, ct, err := (&scepclient.Client{URL: scepURL}).GetCACert(t.Context())
	if err != nil {
		t.Fatalf("GetCACert(%s) = %v", scepURL, err)
	}
	return certs, ct
}

// caInfo is a CA as GET /api/v1/certificate-authorities lists it, with its
// certificate downloaded from /cert.
type caInfo struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	Cert *x509.Certificate
}

// listCAs returns the server's CAs by role (ROOT, INTERMEDIATE, RA).
func listCAs(t *testing.T, s *testServer) map[string]caInfo {
	t.Helper()
	resp := s.API(t, http.MethodGet, "/api/v1/certificate-authorities", nil)
	var list []caInfo
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("list CAs = %d, %v", resp.StatusCode, err)
	}
	out := map[string]caInfo{}
	for _, c := range list {
		r := s.API(t, http.MethodGet, "/api/v1/certificate-authorities/"+c.ID+"/cert?format=der", nil)
		der, err := io.ReadAll(r.Body)
		if err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("download CA %s = %d, %v", c.ID, r.StatusCode, err)
		}
		if c.Cert, err = x509.ParseCertificate(der); err != nil {
			t.Fatalf("CA %s: %v", c.ID, err)
		}
		out[c.Role] = c
	}
	if out["ROOT"].Cert == nil || out["INTERMEDIATE"].Cert == nil {
		t.Fatalf("CAs = %v, want a ROOT and an INTERMEDIATE", list)
	}
	return out
}

// createdIntegration is a device integration created by the admin API.
type createdIntegration struct {
	ID        string `json:"id"`
	SCEPURL   string `json:"scepUrl"`
	SecretKey string `json:"secretKey"`
	Renewal   bool   `json:"renewal"`
	CAChain   string `json:"caChain"`
}

// createIntegration creates a DESKTOP/STATIC integration; extra adds
// fields such as "renewal" or "caChain".
func createIntegration(t *testing.T, s *testServer, name string, extra map[string]any) createdIntegration {
	t.Helper()
	req := map[string]any{"platform": "DESKTOP", "challengeType": "STATIC", "name": name}
	for k, v := range extra {
		req[k] = v
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp := s.API(t, http.MethodPost, "/api/v1/device-integrations", bytes.NewReader(body))
	var in createdIntegration
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create integration %s = %d, %v", body, resp.StatusCode, err)
	}
	if in.SCEPURL == "" || in.SecretKey == "" {
		t.Fatalf("create integration %s = %+v, want a SCEP URL and a secret", body, in)
	}
	return in
}

// readCertFile parses the first PEM certificate in path.
func readCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// readPrivateKey parses the PEM private key in path (PKCS #1, PKCS #8 or
// SEC 1), as scepclient and certmonger write them, with the parser
// `scepca attest` uses.
func readPrivateKey(t *testing.T, path string) crypto.Signer {
	t.Helper()
	key, err := readKeyPEM(path)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// samePublicKey reports whether cert certifies the key in keyPath.
func samePublicKey(t *testing.T, cert *x509.Certificate, keyPath string) bool {
	t.Helper()
	pub, ok := readPrivateKey(t, keyPath).Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// writePEM writes DER blocks of one type to path.
func writePEMFile(t *testing.T, path, typ string, ders ...[]byte) {
	t.Helper()
	var b bytes.Buffer
	for _, d := range ders {
		if err := pem.Encode(&b, &pem.Block{Type: typ, Bytes: d}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeKey writes an RSA key as PKCS #8 PEM.
func writeKeyFile(t *testing.T, path string, key *rsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEMFile(t, path, "PRIVATE KEY", der)
}

// requestLogs returns the server's per-request log events (one JSON line
// each, info level) for the SCEP path of scepURL and the given operation.
func requestLogs(s *testServer, scepURL, operation string) []map[string]any {
	path := strings.TrimPrefix(scepURL, s.URL)
	var out []map[string]any
	for line := range strings.SplitSeq(s.Stderr.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil || ev["msg"] != "request" {
			continue
		}
		if ev["path"] == path && ev["operation"] == operation {
			out = append(out, ev)
		}
	}
	return out
}

// envelopeAlgorithms reads a DER ContentInfo holding an EnvelopedData and
// returns its content-encryption and (first) key-encryption algorithm
// OIDs, independently of internal/cms.
func envelopeAlgorithms(der []byte) (content, keyTransport asn1.ObjectIdentifier, err error) {
	var ci struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		return nil, nil, fmt.Errorf("ContentInfo: %w", err)
	}
	// Trailing elements of a SEQUENCE are ignored by encoding/asn1.
	type algorithmIdentifier struct{ Algorithm asn1.ObjectIdentifier }
	var ed struct {
		Version        int
		RecipientInfos []struct {
			Version int
			RID     asn1.RawValue
			KeyAlg  algorithmIdentifier
		} `asn1:"set"`
		EncryptedContentInfo struct {
			ContentType asn1.ObjectIdentifier
			Algorithm   algorithmIdentifier
		}
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
		return nil, nil, fmt.Errorf("EnvelopedData: %w", err)
	}
	if len(ed.RecipientInfos) == 0 {
		return nil, nil, errors.New("EnvelopedData: no recipients")
	}
	return ed.EncryptedContentInfo.Algorithm.Algorithm, ed.RecipientInfos[0].KeyAlg.Algorithm, nil
}
