package attest_test

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/client"
	"github.com/scepca/scepca/internal/testpki"
	"github.com/scepca/scepca/store"
)

// In-memory fakes of the verifier's interfaces: the pure core runs without
// a database (STYLE.md §1), so the fuzzer reaches every branch quickly.
// Their answers derive from the input, so every reason is reachable.

type fakeNonces struct{}

func (f fakeNonces) Check(ctx context.Context, nonce string) error { return f.Consume(ctx, nonce) }

func (fakeNonces) Consume(_ context.Context, nonce string) error {
	switch {
	case strings.HasPrefix(nonce, "used"):
		return attest.ErrNonceUsed
	case strings.HasPrefix(nonce, "old"):
		return attest.ErrNonceExpired
	case strings.HasPrefix(nonce, "unknown"):
		return attest.ErrNonceUnknown
	}
	return nil
}

type fakeAnchors struct{ ours, uploaded *attest.Issuer }

func (a fakeAnchors) Find(_ context.Context, c *x509.Certificate) (*attest.Issuer, error) {
	for _, iss := range []*attest.Issuer{a.ours, a.uploaded} {
		if bytes.Equal(c.RawIssuer, iss.Cert.RawSubject) && c.CheckSignatureFrom(iss.Cert) == nil {
			return iss, nil
		}
	}
	return nil, attest.ErrUntrusted
}

// fakeRecords keeps our certificates' records for the fuzz target.
type fakeRecords map[string]*store.Certificate

func (m fakeRecords) GetCertificate(_ context.Context, serial string) (*store.Certificate, error) {
	if c, ok := m[serial]; ok {
		return c, nil
	}
	return nil, store.ErrNotFound
}

type fakeCRLs struct{}

func (fakeCRLs) Check(_ context.Context, cert, _ *x509.Certificate) (attest.CRLStatus, error) {
	switch cert.Subject.CommonName {
	case "crl-revoked":
		return attest.CRLRevoked, nil
	case "crl-hold":
		return attest.CRLHold, nil
	case "crl-down":
		return attest.CRLGood, attest.ErrCRLUnavailable
	}
	return attest.CRLGood, nil
}

type fakeDevices struct {
	mu    sync.Mutex
	binds map[string]string
}

func (d *fakeDevices) RecordAttestation(_ context.Context, a *store.Attestation) (*store.Device, *store.Binding, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dev := &store.Device{ID: a.DeviceID, Status: store.DeviceActive}
	switch {
	case strings.HasPrefix(a.DeviceID, "susp"):
		dev.Status = store.DeviceSuspended
	case strings.HasPrefix(a.DeviceID, "deact"):
		dev.Status = store.DeviceDeactivated
	}
	var b *store.Binding
	if a.Certificate != nil {
		owner, ok := d.binds[a.Certificate.SHA256]
		if !ok {
			owner = a.DeviceID
		}
		b = &store.Binding{CertSHA256: a.Certificate.SHA256, DeviceID: owner}
		if owner != a.DeviceID {
			return nil, b, store.ErrConflict
		}
	}
	if dev.Status != store.DeviceActive {
		return dev, b, store.ErrConflict
	}
	if b != nil {
		d.binds[b.CertSHA256] = b.DeviceID
	}
	return dev, b, nil
}

type fakeIntegrations struct{}

func (fakeIntegrations) GetIntegration(_ context.Context, id string) (*store.Integration, error) {
	switch id {
	case "int-ios":
		return &store.Integration{ID: id, Platform: store.PlatformIOS, Enabled: true, HintCiphertext: []byte("fuzz-hint-123")}, nil
	case "int-android":
		return &store.Integration{ID: id, Platform: store.PlatformAndroid, Enabled: true, AllowPlainHint: true, HintCiphertext: []byte("fuzz-hint-123")}, nil
	case "int-off":
		return &store.Integration{ID: id, Platform: store.PlatformIOS, HintCiphertext: []byte("fuzz-hint-123")}, nil
	}
	return nil, store.ErrNotFound
}

type identityOpener struct{}

func (identityOpener) Open(ct, _ []byte) ([]byte, error) { return ct, nil }

// fuzzSetup builds a verifier over fakes and valid seed requests.
func fuzzSetup(t testing.TB) (*attest.Verifier, [][]byte) {
	t.Helper()
	key0 := testpki.NewECKey(t, elliptic.P256())
	ours := testpki.CA(t)
	byoKey := testpki.NewECKey(t, elliptic.P384())
	byoCA := testpki.SelfSigned(t, byoKey, "fuzz BYO CA", testpki.WithTemplate(func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageCRLSign
	}))
	byoIssue := func(cn string, edit func(*x509.Certificate)) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(len(cn)) + 1000), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		if edit != nil {
			edit(tmpl)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, byoCA, key0.Public(), byoKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	key := key0
	rsaKey := testpki.NewRSAKey(t, 2048)
	ourCert := ours.Issue(t, key.Public(), "alice managementAttestation D1")
	records := fakeRecords{}
	records[strings.ToUpper(ourCert.SerialNumber.Text(16))] = &store.Certificate{DER: ourCert.Raw, Status: store.CertIssued, User: "alice"}
	v, err := attest.New(attest.Config{
		Nonces: fakeNonces{},
		Anchors: fakeAnchors{
			ours:     &attest.Issuer{ID: "ours", Cert: ours.Intermediate},
			uploaded: &attest.Issuer{ID: "byo", Cert: byoCA, Uploaded: true},
		},
		Certificates: records,
		CRLs:         fakeCRLs{},
		Devices:      &fakeDevices{binds: map[string]string{}},
		Integrations: fakeIntegrations{},
		Hints:        identityOpener{},
		Now:          func() time.Time { return ourCert.NotBefore.Add(2 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	add := func(req *attest.VerifyRequest) {
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, nonce := range []string{"fresh", "used-1", "old-1", "unknown-1"} {
		for _, c := range []struct {
			cert *x509.Certificate
			dev  string
			alg  string
		}{
			{ourCert, "D1", ""},
			{ourCert, "D1-other", ""},
			{byoIssue("good", nil), "susp-1", ""},
			{byoIssue("good-2", nil), "deact-1", ""},
			{byoIssue("crl-revoked", nil), "D2", ""},
			{byoIssue("crl-hold", nil), "D3", ""},
			{byoIssue("crl-down", nil), "D6", ""},
			{byoIssue("ku", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCertSign }), "D4", ""},
			{testpki.SelfSigned(t, key, "self"), "D5", ""},
		} {
			req, err := client.SignDesktop(key, c.cert, nonce, c.dev, attest.PlatformWindows, c.alg)
			if err != nil {
				t.Fatal(err)
			}
			add(req)
		}
		rsaCert := ours.Issue(t, rsaKey.Public(), "rsa")
		records[strings.ToUpper(rsaCert.SerialNumber.Text(16))] = &store.Certificate{DER: rsaCert.Raw, Status: store.CertRevoked}
		for _, alg := range []string{attest.AlgRSAPKCS1SHA256, attest.AlgRSAPSSSHA256} {
			req, err := client.SignDesktop(rsaKey, rsaCert, nonce, "R1", attest.PlatformMacOS, alg)
			if err != nil {
				t.Fatal(err)
			}
			add(req)
			req.SignatureAlgorithm = attest.AlgECDSASHA256 // does not fit the key
			add(req)
		}
		// TPM evidence that fails to parse, so the fuzzer reaches attest/tpm.
		tpmReq, err := client.SignDesktop(key, ourCert, nonce, "D1", attest.PlatformWindows, "")
		if err != nil {
			t.Fatal(err)
		}
		tpmReq.TPM = &attest.TPMEvidence{AKPublic: "AAE=", CertifyInfo: "/1RDR4AX", Signature: "ABg=", KeyPublic: "AAE="}
		add(tpmReq)
		add(client.SignMobile("fuzz-hint-123", "int-ios", nonce, "P1", attest.PlatformIOS))
		add(client.SignMobile("wrong-hint-123", "int-ios", nonce, "P1", attest.PlatformIOS))
		add(&attest.VerifyRequest{Nonce: nonce, DeviceID: "P2", Platform: attest.PlatformAndroid, IntegrationID: "int-android", ManagementHint: "fuzz-hint-123"})
		add(&attest.VerifyRequest{Nonce: nonce, DeviceID: "P3", Platform: attest.PlatformIOS, IntegrationID: "int-ios", ManagementHint: "fuzz-hint-123"})
		add(client.SignMobile("fuzz-hint-123", "int-off", nonce, "P4", attest.PlatformIOS))
		add(client.SignMobile("fuzz-hint-123", "int-none", nonce, "P5", attest.PlatformAndroid))
	}
	seeds = append(seeds, []byte(`{}`), []byte(`{"nonce":"n","deviceId":"d","platform":"MACOS","extra":1}`), []byte(`[`), []byte(`{"nonce":1}`))
	return v, seeds
}

// FuzzAttestProof feeds arbitrary bytes to the request decoder and, when
// they decode, to the verifier: no panic, decoding errors are
// *RequestError, and every answer carries a documented reason.
func FuzzAttestProof(f *testing.F) {
	v, seeds := fuzzSetup(f)
	for _, s := range seeds {
		f.Add(s)
	}
	reasons := attest.Reasons()
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := attest.DecodeVerifyRequest(bytes.NewReader(body))
		if err != nil {
			if _, ok := errors.AsType[*attest.RequestError](err); !ok {
				t.Fatalf("DecodeVerifyRequest() = %T %v, want a *RequestError", err, err)
			}
			return
		}
		dc, err := v.Verify(t.Context(), p)
		if err != nil {
			t.Fatalf("Verify() = %v, want a device context (the fakes never fail)", err)
		}
		if !slices.Contains(reasons, dc.Reason) || dc.Managed != (dc.Reason == attest.ReasonManaged) {
			t.Fatalf("Verify() = managed %v, reason %q, want a documented reason consistent with managed", dc.Managed, dc.Reason)
		}
	})
}

// TestFuzzSeedsReachEveryReason: the fuzz seeds cover every reason (so
// the corpus starts from every branch).
func TestFuzzSeedsReachEveryReason(t *testing.T) {
	t.Parallel()
	v, seeds := fuzzSetup(t)
	seen := map[string]bool{}
	for _, s := range seeds {
		p, err := attest.DecodeVerifyRequest(bytes.NewReader(s))
		if err != nil {
			continue
		}
		dc, err := v.Verify(t.Context(), p)
		if err != nil {
			t.Fatalf("Verify(%s) = %v", s, err)
		}
		seen[dc.Reason] = true
	}
	// CERT_NOT_YET_VALID, CERT_EXPIRED, CERT_UNKNOWN, CERT_REVOKED (ours)
	// and CERT_ON_HOLD (ours) need a store or a clock: verifier_test.go;
	// KEY_NOT_HARDWARE_BACKED a TPM: tpm_test.go.
	for _, r := range attest.Reasons() {
		switch r {
		case attest.ReasonCertNotYetValid, attest.ReasonCertExpired, attest.ReasonCertUnknown,
			attest.ReasonKeyNotHardwareBacked: // needs a DESKTOP integration: tpm_test.go
			continue
		}
		if !seen[r] {
			t.Errorf("no fuzz seed yields %s", r)
		}
	}
}
