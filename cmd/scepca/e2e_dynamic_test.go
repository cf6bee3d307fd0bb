package main

import (
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/scepca/scepca/internal/cms"
	"github.com/scepca/scepca/internal/ndesclient"
	"github.com/scepca/scepca/internal/scepclient"
	"github.com/scepca/scepca/internal/testpki"
)

// dynamicIntegration is a DYNAMIC integration as created by the admin API.
type dynamicIntegration struct {
	ID           string `json:"id"`
	SCEPURL      string `json:"scepUrl"`
	ChallengeURL string `json:"challengeUrl"`
	Username     string `json:"username"`
	Password     string `json:"password"`
}

func createDynamic(t *testing.T, s *testServer, extra string) dynamicIntegration {
	t.Helper()
	body := `{"platform":"DESKTOP","challengeType":"DYNAMIC","name":"Jamf dynamic"` + extra + `}`
	resp := s.API(t, http.MethodPost, "/api/v1/device-integrations", strings.NewReader(body))
	var in dynamicIntegration
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create DYNAMIC integration = %d, %v", resp.StatusCode, err)
	}
	if in.ChallengeURL != s.URL+"/certsrv/mscep_admin/"+in.ID+"/" || in.Username == "" || in.Password == "" {
		t.Fatalf("create DYNAMIC integration = %+v, want challengeUrl, username and password", in)
	}
	return in
}

// TestDynamicChallengeScepclient is the Jamf "Dynamic-Microsoft CA" flow:
// the UEM fetches a one-time challenge like Fleet's NDES client does, then
// Debian's scepclient enrolls with it; the challenge works once.
func TestDynamicChallengeScepclient(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	in := createDynamic(t, s, `,"ndesEncoding":true`)
	challenge, err := ndesclient.Fetch(t.Context(), nil, in.ChallengeURL, in.Username, in.Password)
	if err != nil {
		t.Fatalf("Fetch(%s) = %v", in.ChallengeURL, err)
	}

	first := t.TempDir()
	cert := enrollScepclient(t, first, scepclientRun{URL: in.SCEPURL, Challenge: challenge, CN: "erin managementAttestation UDID77"})
	if cert.Subject.CommonName != "erin managementAttestation UDID77" {
		t.Errorf("issued CN = %q", cert.Subject.CommonName)
	}

	// The same transaction again (same key, so the same transactionID) is
	// not a second use: it gets the same certificate.
	if err := os.Remove(filepath.Join(first, "cert.pem")); err != nil {
		t.Fatal(err)
	}
	again := enrollScepclient(t, first, scepclientRun{URL: in.SCEPURL, Challenge: challenge, CN: "erin managementAttestation UDID77"})
	if again.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Errorf("retry serial = %x, want %x", again.SerialNumber, cert.SerialNumber)
	}

	// Another device with the same challenge is refused.
	out, code := runScepclient(t, t.TempDir(), scepclientRun{URL: in.SCEPURL, Challenge: challenge, CN: "mallory managementAttestation UDID78"})
	if code != 1 || !strings.Contains(out, "failInfo: badRequest (2)") {
		t.Errorf("scepclient(second use) = exit %d, want 1 with badRequest\n%s", code, out)
	}
	// A challenge from the page of another integration is unknown here.
	other := createDynamic(t, s, "")
	foreign, err := ndesclient.Fetch(t.Context(), nil, other.ChallengeURL, other.Username, other.Password)
	if err != nil {
		t.Fatal(err)
	}
	out, code = runScepclient(t, t.TempDir(), scepclientRun{URL: in.SCEPURL, Challenge: foreign, CN: "x"})
	if code != 1 || !strings.Contains(out, "failInfo: badRequest (2)") {
		t.Errorf("scepclient(other integration's challenge) = exit %d, want 1 with badRequest\n%s", code, out)
	}

	// Resetting the page password: the old one stops working at once.
	resp := s.API(t, http.MethodPost, "/api/v1/device-integrations/"+in.ID+"/lifecycle/reset-secret", nil)
	var reset dynamicIntegration
	if err := json.NewDecoder(resp.Body).Decode(&reset); err != nil || resp.StatusCode != http.StatusOK || reset.Password == "" || reset.Password == in.Password {
		t.Fatalf("reset-secret = %d %+v, %v", resp.StatusCode, reset, err)
	}
	if _, err := ndesclient.Fetch(t.Context(), nil, in.ChallengeURL, in.Username, in.Password); !errors.Is(err, ndesclient.ErrInvalid) {
		t.Errorf("Fetch(old password) = %v, want %v", err, ndesclient.ErrInvalid)
	}
	if _, err := ndesclient.Fetch(t.Context(), nil, in.ChallengeURL, in.Username, reset.Password); err != nil {
		t.Errorf("Fetch(new password) = %v", err)
	}
	if strings.Contains(s.Stderr.String(), challenge) || strings.Contains(s.Stderr.String(), reset.Password) {
		t.Error("a challenge or password appears in the server log")
	}
}

// TestDynamicChallengeRace sends 100 different transactions with one
// challenge at once over HTTP: exactly one gets a certificate.
func TestDynamicChallengeRace(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	in := createDynamic(t, s, "")
	challenge, err := ndesclient.Fetch(t.Context(), nil, in.ChallengeURL, in.Username, in.Password)
	if err != nil {
		t.Fatal(err)
	}
	client := &scepclient.Client{URL: in.SCEPURL}
	certs, _, err := client.GetCACert(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	recipient := scepclient.Recipient(certs)

	const n = 100
	msgs := make([]*scepclient.Message, n)
	for i := range msgs {
		key := testpki.RSAKeyN(t, 2048, i%4) // a key may serve several transactions
		csr, err := scepclient.CSR(key, pkix.Name{CommonName: fmt.Sprintf("racer%d managementAttestation R%d", i, i)}, challenge)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := scepclient.SelfSigned(key, "SCEP SIGNER")
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = &scepclient.Message{
			Type: scepclient.TypePKCSReq, TransactionID: fmt.Sprintf("race-%d", i),
			Signer: signer, Key: key, Recipient: recipient, Content: csr,
			Params: cms.Params{ContentEncryption: cms.AES256CBC, KeyTransport: cms.RSAPKCS1v15},
		}
	}
	var wg sync.WaitGroup
	replies := make([]*scepclient.Reply, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			replies[i], errs[i] = client.Do(t.Context(), msgs[i])
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("racer %d: %v", i, errs[i])
		case replies[i].Status == scepclient.StatusSuccess:
			wins++
		case replies[i].Status != scepclient.StatusFailure || replies[i].FailInfo != "2":
			t.Errorf("racer %d: status %s failInfo %s, want SUCCESS or FAILURE badRequest", i, replies[i].Status, replies[i].FailInfo)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d racers got a certificate, want exactly 1", wins, n)
	}
}
