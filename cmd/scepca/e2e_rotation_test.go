package main

// End-to-end CA rotation (issue 7): scepclient enrolls under the first
// intermediate, the admin API rotates and activates a successor in the
// running server, scepclient enrolls again under the successor, both
// certificates pass the attestation verifier, and the first one still
// authenticates a renewal. The CLI path (data directory, server stopped)
// follows.

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/scepclient"
)

// caRecord is a CA as the admin API returns it.
type caRecord struct {
	ID      string `json:"id"`
	Role    string `json:"role"`
	Subject string `json:"subject"`
	State   string `json:"state"`
	Active  bool   `json:"active"`
}

func decodeCARecord(t *testing.T, what string, resp *http.Response, wantStatus int) caRecord {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s = %d %s, want %d", what, resp.StatusCode, b, wantStatus)
	}
	var c caRecord
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: decode %s: %v", what, b, err)
	}
	return c
}

func TestRotationEndToEnd(t *testing.T) {
	t.Parallel()
	lookClient(t, "scepclient")
	s := startServer(t, "--log-level", "info")
	ctx := t.Context()
	cas := listCAs(t, s)
	root, inter1 := cas["ROOT"].Cert, cas["INTERMEDIATE"].Cert
	const bobCN = "bob managementAttestation UDID456"

	// CA1: alice enrolls.
	dirA := t.TempDir()
	certA := enrollScepclient(t, dirA, scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN, Fingerprint: sha256Hex(inter1)})
	verifyIssued(t, certA, inter1, root)
	keyA := readPrivateKey(t, filepath.Join(dirA, "key.pem"))

	caps := func() []string {
		t.Helper()
		c, err := (&scepclient.Client{URL: s.SCEPURL}).GetCACaps(ctx)
		if err != nil {
			t.Fatalf("GetCACaps() = %v", err)
		}
		return c
	}
	if slices.Contains(caps(), "GetNextCACert") {
		t.Errorf("GetCACaps() before rotation lists GetNextCACert")
	}

	// Rotate: the successor is staged and announced, CA1 still issues.
	next := decodeCARecord(t, "POST rotate", s.API(t, http.MethodPost, "/api/v1/certificate-authorities/rotate", nil), http.StatusCreated)
	if next.State != "NEXT" || next.Active {
		t.Fatalf("POST rotate = %+v, want a NEXT intermediate", next)
	}
	if !slices.Contains(caps(), "GetNextCACert") {
		t.Errorf("GetCACaps() during the overlap lacks GetNextCACert")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.SCEPURL+"?operation=GetNextCACert", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-x509-next-ca-cert" {
		t.Errorf("GetNextCACert = %d %q, want 200 application/x-x509-next-ca-cert", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if certs, _ := getCACert(t, s.SCEPURL); len(certs) != 1 || !certs[0].Equal(inter1) {
		t.Errorf("GetCACert() during the overlap is not the current intermediate")
	}

	// Activate: the running server issues from the successor at once.
	active := decodeCARecord(t, "POST activate", s.API(t, http.MethodPost, "/api/v1/certificate-authorities/"+next.ID+"/lifecycle/activate", nil), http.StatusOK)
	if active.State != "ACTIVE" || !active.Active {
		t.Errorf("POST activate = %+v, want ACTIVE", active)
	}
	certs, _ := getCACert(t, s.SCEPURL)
	if len(certs) != 1 || certs[0].Equal(inter1) || !strings.Contains(certs[0].Subject.CommonName, "Intermediate Authority G2") {
		t.Fatalf("GetCACert() after activation = %v, want the G2 intermediate alone", certs)
	}
	inter2 := certs[0]
	if slices.Contains(caps(), "GetNextCACert") {
		t.Errorf("GetCACaps() after activation lists GetNextCACert")
	}

	dirB := t.TempDir()
	certB := enrollScepclient(t, dirB, scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: bobCN, Fingerprint: sha256Hex(inter2)})
	verifyIssued(t, certB, inter2, root)
	keyB := readPrivateKey(t, filepath.Join(dirB, "key.pem"))

	// Both generations pass the verifier.
	dcA, err := attestClient(s).AttestDesktop(ctx, keyA, certA, "UDID123", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "verify(certificate of the retired CA)", dcA, attest.ReasonManaged)
	dcB, err := attestClient(s).AttestDesktop(ctx, keyB, certB, "UDID456", attest.PlatformMacOS, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContext(t, "verify(certificate of the new CA)", dcB, attest.ReasonManaged)

	// The retired CA's certificate authenticates a renewal (scepclient
	// with cert.pem present sends a RenewalReq signed by it).
	renewed := enrollScepclient(t, dirA, scepclientRun{URL: s.SCEPURL, Challenge: s.Secret, CN: aliceCN, Fingerprint: sha256Hex(inter2)})
	if renewed.SerialNumber.Cmp(certA.SerialNumber) == 0 {
		t.Errorf("renewal returned the old certificate")
	}
	verifyIssued(t, renewed, inter2, root)
	var renewals int
	for _, ev := range requestLogs(s, s.SCEPURL, "PKIOperation") {
		if ev["message_type"] == "RenewalReq" && ev["pki_status"] == "SUCCESS" {
			renewals++
		}
	}
	if renewals != 1 {
		t.Errorf("successful RenewalReq log lines = %d, want 1", renewals)
	}

	// The audit log has the transitions.
	for _, ev := range []string{"certificate_authority.rotate", "certificate_authority.activate"} {
		if !strings.Contains(s.Stderr.String(), `"msg":"`+ev+`"`) {
			t.Errorf("audit log lacks %s", ev)
		}
	}
}

// TestRotationCLI rotates through the data directory with the server
// stopped, with the root key offline: refused without --root-key-file,
// staged with it, activated by ID; the restarted server issues from the
// successor.
func TestRotationCLI(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startServer(t, "--data", data)
	inter1 := listCAs(t, s)["INTERMEDIATE"].Cert
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	env := testEnv()
	common := []string{"--data", data, "--dev"}
	ca := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := run(t.Context(), append(append([]string{"ca"}, args...), common...), env, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	keyFile := filepath.Join(t.TempDir(), "root.pem")
	if out, err := ca("export-root-key", "--out", keyFile); err != nil {
		t.Fatalf("ca export-root-key = %v\n%s", err, out)
	}
	if out, err := ca("remove-root-key"); err != nil {
		t.Fatalf("ca remove-root-key = %v\n%s", err, out)
	}
	if _, err := ca("rotate"); err == nil || !strings.Contains(err.Error(), "--root-key-file") {
		t.Errorf("ca rotate without the root key = %v, want an error naming --root-key-file", err)
	}
	if _, err := ca("activate"); err == nil || !strings.Contains(err.Error(), "needs the certificate authority ID") {
		t.Errorf("ca activate without an ID = %v, want a usage error", err)
	}
	out, err := ca("rotate", "--root-key-file", keyFile, "--key-type", "ecdsa")
	if err != nil {
		t.Fatalf("ca rotate = %v\n%s", err, out)
	}
	fields := strings.Fields(out)
	i := slices.Index(fields, "intermediate")
	if i < 0 || i+1 >= len(fields) || !strings.Contains(out, "scepca ca activate "+fields[i+1]) {
		t.Fatalf("ca rotate output %q names no ID to activate", out)
	}
	id := fields[i+1]
	if out, err := ca("activate", id); err != nil || !strings.Contains(out, "is retired") {
		t.Fatalf("ca activate %s = %v\n%s", id, err, out)
	}
	if !strings.Contains(out, `"msg":"certificate_authority.rotate"`) {
		t.Errorf("ca rotate wrote no audit event:\n%s", out)
	}

	s = startServer(t, "--data", data)
	cas := listCAs(t, s)
	if cas["INTERMEDIATE"].Cert == nil || cas["RA"].Cert == nil {
		t.Fatalf("CAs after the CLI rotation = %v, want an intermediate and the new ECDSA intermediate's RA", cas)
	}
	certs, ct := getCACert(t, s.SCEPURL)
	if ct != mimeCARACert || len(certs) != 2 {
		t.Errorf("GetCACert() after the CLI rotation = %s with %d certificates, want the new RA and ECDSA intermediate", ct, len(certs))
	}
	if certs, _ := getCACert(t, s.SCEPURL); slices.ContainsFunc(certs, inter1.Equal) {
		t.Errorf("GetCACert() still serves the retired intermediate")
	}
}

// TestRotationAPIClient rotates a running server through `scepca cas`,
// the admin API client.
func TestRotationAPIClient(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	var oldID string
	for _, c := range cliJSON[[]caRecord](t, s, "cas", "list") {
		if c.Role == "INTERMEDIATE" && c.State == "ACTIVE" {
			oldID = c.ID
		}
	}
	if oldID == "" {
		t.Fatal("scepca cas list shows no ACTIVE intermediate")
	}
	next := cliJSON[caRecord](t, s, "cas", "rotate", "--key-type", "ecdsa")
	if next.State != "NEXT" {
		t.Fatalf("scepca cas rotate = %+v, want NEXT", next)
	}
	cliFails(t, s, "already staged", "cas", "rotate")
	cliFails(t, s, "active INTERMEDIATE", "cas", "delete", oldID)
	if got := cliJSON[caRecord](t, s, "cas", "activate", next.ID); got.State != "ACTIVE" {
		t.Errorf("scepca cas activate = %+v, want ACTIVE", got)
	}
	table := cli(t, s, "cas", "list", "--output", "table")
	if table.err != nil || !strings.Contains(table.stdout, "RETIRED") || !strings.Contains(table.stdout, "STATE") {
		t.Errorf("scepca cas list --output table = %v\n%s, want a state column with RETIRED", table.err, table.stdout)
	}
	if r := cli(t, s, "cas", "delete", oldID); r.err != nil || !strings.Contains(r.stdout, `"deleted": true`) {
		t.Errorf("scepca cas delete %s = %v\n%s", oldID, r.err, r.stdout)
	}
	if certs, ct := getCACert(t, s.SCEPURL); ct != mimeCARACert || len(certs) != 2 {
		t.Errorf("GetCACert() after the rotation to ECDSA = %s with %d certificates, want the new RA and intermediate", ct, len(certs))
	}
}
