package attest_test

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
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

// TestVerifyDesktopAlgorithms: a certificate our CA issued proves a device
// with each signature algorithm; the context carries the facts.
func TestVerifyDesktopAlgorithms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"RSA PKCS#1 v1.5", testpki.NewRSAKey(t, 2048), attest.AlgRSAPKCS1SHA256},
		{"RSA-PSS", testpki.RSAKeyN(t, 2048, 1), attest.AlgRSAPSSSHA256},
		{"ECDSA P-256", testpki.NewECKey(t, elliptic.P256()), attest.AlgECDSASHA256},
		{"ECDSA P-384", testpki.NewECKey(t, elliptic.P384()), attest.AlgECDSASHA256},
	}
	f := newFixture(t, "")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			device := "DEV-" + strings.ReplaceAll(tc.name, " ", "")
			cert := f.issue(t, tc.key, "alice managementAttestation "+device)
			dc := f.verify(t, f.desktopProof(t, tc.key, cert, device, tc.alg))
			wantReason(t, "Verify("+tc.name+")", dc, attest.ReasonManaged)
			if dc.User != "alice" || dc.IntegrationID != "int-desktop" || dc.DeviceStatus != store.DeviceActive ||
				dc.Certificate == nil || dc.Certificate.IssuerID != f.ca.IntermediateID() ||
				dc.Certificate.Serial != strings.ToUpper(cert.SerialNumber.Text(16)) || dc.HardwareBacked {
				t.Errorf("Verify(%s) context = %+v (certificate %+v), want user alice, integration, ACTIVE, our issuer and serial", tc.name, dc, dc.Certificate)
			}
			dev, err := f.db.GetDevice(t.Context(), device)
			if err != nil || dev.Platform != attest.PlatformMacOS || dev.User != "alice" || len(dev.Certificates) != 1 ||
				dev.Certificates[0].Serial != dc.Certificate.Serial || !dev.FirstSeen.Equal(dc.VerifiedAt) {
				t.Errorf("GetDevice(%s) after Verify = %+v, %v, want the device recorded with its certificate", device, dev, err)
			}
		})
	}
}

// TestVerifyECDSARawSignature: Windows CNG signs ECDSA as raw r||s; it is
// accepted beside DER.
func TestVerifyECDSARawSignature(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	key := testpki.NewECKey(t, elliptic.P256())
	cert := f.issue(t, key, "raw")
	nonce := f.nonce(t)
	digest := sha256.Sum256(attest.Message(nonce, "win-1"))
	der, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 64)
	sig.R.FillBytes(raw[:32])
	sig.S.FillBytes(raw[32:])
	dc := f.verify(t, &attest.VerifyRequest{
		Nonce: nonce, DeviceID: "win-1", Platform: attest.PlatformWindows,
		Certificate: base64.StdEncoding.EncodeToString(cert.Raw), Signature: base64.StdEncoding.EncodeToString(raw),
		SignatureAlgorithm: attest.AlgECDSASHA256,
	})
	wantReason(t, "Verify(raw r||s)", dc, attest.ReasonManaged)
}

// TestVerifyDesktopRefusals: every desktop refusal, each from a fresh
// nonce unless the case is about the nonce.
func TestVerifyDesktopRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	key := testpki.NewRSAKey(t, 2048)
	ecKey := testpki.NewECKey(t, elliptic.P256())

	tests := []struct {
		name   string
		reason string
		proof  func(t *testing.T) *attest.VerifyRequest
	}{
		{"unknown nonce", attest.ReasonNonceUnknown, func(t *testing.T) *attest.VerifyRequest {
			cert := f.issue(t, key, "u")
			req, err := client.SignDesktop(key, cert, base64.RawURLEncoding.EncodeToString(make([]byte, 32)), "d", attest.PlatformMacOS, "")
			if err != nil {
				t.Fatal(err)
			}
			return req
		}},
		{"malformed nonce", attest.ReasonNonceUnknown, func(t *testing.T) *attest.VerifyRequest {
			cert := f.issue(t, key, "u")
			req, err := client.SignDesktop(key, cert, "not-a-nonce", "d", attest.PlatformMacOS, "")
			if err != nil {
				t.Fatal(err)
			}
			return req
		}},
		{"signature over another device ID", attest.ReasonBadSignature, func(t *testing.T) *attest.VerifyRequest {
			req := f.desktopProof(t, key, f.issue(t, key, "b"), "device-a", "")
			req.DeviceID = "device-b"
			return req
		}},
		{"signature over another nonce", attest.ReasonBadSignature, func(t *testing.T) *attest.VerifyRequest {
			req := f.desktopProof(t, key, f.issue(t, key, "b"), "device-a", "")
			req.Nonce = f.nonce(t)
			return req
		}},
		{"PKCS#1 signature sent as PSS", attest.ReasonBadSignature, func(t *testing.T) *attest.VerifyRequest {
			req := f.desktopProof(t, key, f.issue(t, key, "b"), "device-a", attest.AlgRSAPKCS1SHA256)
			req.SignatureAlgorithm = attest.AlgRSAPSSSHA256
			return req
		}},
		{"ECDSA algorithm for an RSA key", attest.ReasonBadSignature, func(t *testing.T) *attest.VerifyRequest {
			req := f.desktopProof(t, key, f.issue(t, key, "b"), "device-a", "")
			req.SignatureAlgorithm = attest.AlgECDSASHA256
			return req
		}},
		{"RSA algorithm for an ECDSA key", attest.ReasonBadSignature, func(t *testing.T) *attest.VerifyRequest {
			req := f.desktopProof(t, ecKey, f.issue(t, ecKey, "b"), "device-a", "")
			req.SignatureAlgorithm = attest.AlgRSAPKCS1SHA256
			return req
		}},
		{"self-signed certificate", attest.ReasonUntrustedIssuer, func(t *testing.T) *attest.VerifyRequest {
			return f.desktopProof(t, key, testpki.SelfSigned(t, key, "self"), "device-a", "")
		}},
		{"another CA's certificate", attest.ReasonUntrustedIssuer, func(t *testing.T) *attest.VerifyRequest {
			other := testpki.CA(t)
			return f.desktopProof(t, key, other.Issue(t, key.Public(), "other"), "device-a", "")
		}},
		{"our CA's name, another key", attest.ReasonUntrustedIssuer, func(t *testing.T) *attest.VerifyRequest {
			impostor := testpki.CA(t)
			impostor.Intermediate.RawSubject = f.ca.Intermediate().RawSubject
			c := impostor.Issue(t, key.Public(), "impostor", testpki.WithTemplate(func(c *x509.Certificate) {
				c.Issuer = f.ca.Intermediate().Subject
			}))
			return f.desktopProof(t, key, c, "device-a", "")
		}},
		{"revoked", attest.ReasonCertRevoked, func(t *testing.T) *attest.VerifyRequest {
			c := f.issue(t, key, "r")
			if err := f.db.UpdateCertificateStatus(t.Context(), strings.ToUpper(c.SerialNumber.Text(16)), store.CertRevoked, f.clock.Now(), 1); err != nil {
				t.Fatal(err)
			}
			return f.desktopProof(t, key, c, "device-a", "")
		}},
		{"on hold", attest.ReasonCertOnHold, func(t *testing.T) *attest.VerifyRequest {
			c := f.issue(t, key, "h")
			if err := f.db.UpdateCertificateStatus(t.Context(), strings.ToUpper(c.SerialNumber.Text(16)), store.CertOnHold, f.clock.Now(), 6); err != nil {
				t.Fatal(err)
			}
			return f.desktopProof(t, key, c, "device-a", "")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := tc.proof(t)
			dc := f.verify(t, req)
			wantReason(t, "Verify("+tc.name+")", dc, tc.reason)
			if dc.Certificate == nil {
				t.Errorf("Verify(%s).Certificate = nil, want the certificate's facts", tc.name)
			}
			// Every proof spends its nonce, good or bad.
			if tc.reason != attest.ReasonNonceUnknown {
				again := f.verify(t, req)
				wantReason(t, "Verify("+tc.name+") again", again, attest.ReasonNonceUsed)
			}
		})
	}
}

// TestVerifyNonceReplayAndExpiry: a used nonce is refused even with a
// valid proof; an expired one is refused at its TTL (injected clock).
func TestVerifyNonceReplayAndExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	key := testpki.NewRSAKey(t, 2048)
	cert := f.issue(t, key, "replay")

	req := f.desktopProof(t, key, cert, "dev-1", "")
	wantReason(t, "Verify(first)", f.verify(t, req), attest.ReasonManaged)
	wantReason(t, "Verify(replay)", f.verify(t, req), attest.ReasonNonceUsed)

	req = f.desktopProof(t, key, cert, "dev-1", "")
	f.clock.Add(attest.DefaultNonceTTL)
	wantReason(t, "Verify(at the TTL)", f.verify(t, req), attest.ReasonNonceExpired)
	// Swept an hour after it expired, a nonce is unknown.
	f.clock.Add(time.Hour + time.Second)
	if n, err := f.nonces.Sweep(t.Context()); err != nil || n != 2 {
		t.Errorf("Sweep() = %d, %v, want 2 (the used and the expired nonce)", n, err)
	}
	wantReason(t, "Verify(after the sweep)", f.verify(t, req), attest.ReasonNonceUnknown)
}

// TestVerifyCertificateTime: before notBefore and after notAfter.
func TestVerifyCertificateTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	key := testpki.NewRSAKey(t, 2048)
	cert := f.issue(t, key, "time")

	f.clock.Add(cert.NotAfter.Sub(f.clock.Now()) + time.Second)
	req := f.desktopProof(t, key, cert, "dev-1", "")
	wantReason(t, "Verify(after notAfter)", f.verify(t, req), attest.ReasonCertExpired)

	g := newFixture(t, "")
	cert = g.issue(t, key, "future")
	g.clock.Add(-time.Hour) // before the CA's five minutes of backdating
	req = g.desktopProof(t, key, cert, "dev-1", "")
	wantReason(t, "Verify(before notBefore)", g.verify(t, req), attest.ReasonCertNotYetValid)
}

// TestVerifyBinding: the first device binds a certificate; another device
// presenting it is refused, and the first keeps attesting.
func TestVerifyBinding(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	key := testpki.NewRSAKey(t, 2048)
	cert := f.issue(t, key, "bob managementAttestation A")

	wantReason(t, "Verify(device A)", f.verify(t, f.desktopProof(t, key, cert, "A", "")), attest.ReasonManaged)
	dc := f.verify(t, f.desktopProof(t, key, cert, "B", ""))
	wantReason(t, "Verify(device B)", dc, attest.ReasonCertBoundToOther)
	if _, err := f.db.GetDevice(t.Context(), "B"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDevice(B) after a refused proof = %v, want %v", err, store.ErrNotFound)
	}
	wantReason(t, "Verify(device A again)", f.verify(t, f.desktopProof(t, key, cert, "A", "")), attest.ReasonManaged)
	b, err := f.db.GetBinding(t.Context(), f.verify(t, f.desktopProof(t, key, cert, "A", "")).Certificate.SHA256)
	if err != nil || b.DeviceID != "A" {
		t.Errorf("GetBinding() = %+v, %v, want bound to A", b, err)
	}
}

// TestVerifyLifecycle: each lifecycle state of DESIGN.md §2 through
// Lifecycle, with its certificate effects.
func TestVerifyLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := t.Context()
	key := testpki.NewRSAKey(t, 2048)
	cert := f.issue(t, key, "carol managementAttestation LC-1")
	serial := strings.ToUpper(cert.SerialNumber.Text(16))
	status := func() string {
		c, err := f.db.GetCertificate(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		return c.Status
	}
	// A second certificate naming the device in its subject, never used:
	// lifecycle effects reach it too.
	key2 := testpki.RSAKeyN(t, 2048, 2)
	spare := f.issue(t, key2, "carol managementAttestation LC-1")
	spareSerial := strings.ToUpper(spare.SerialNumber.Text(16))

	wantReason(t, "Verify(ACTIVE)", f.verify(t, f.desktopProof(t, key, cert, "LC-1", "")), attest.ReasonManaged)

	if _, err := f.lifecycle.Suspend(ctx, "LC-1"); err != nil {
		t.Fatalf("Suspend() = %v", err)
	}
	dc := f.verify(t, f.desktopProof(t, key, cert, "LC-1", ""))
	wantReason(t, "Verify(SUSPENDED)", dc, attest.ReasonDeviceSuspended)
	if dc.DeviceStatus != store.DeviceSuspended || status() != store.CertIssued {
		t.Errorf("SUSPENDED: context status %q, certificate %s, want SUSPENDED and ISSUED (untouched)", dc.DeviceStatus, status())
	}
	if _, err := f.lifecycle.Unsuspend(ctx, "LC-1"); err != nil {
		t.Fatalf("Unsuspend() = %v", err)
	}
	wantReason(t, "Verify(unsuspended)", f.verify(t, f.desktopProof(t, key, cert, "LC-1", "")), attest.ReasonManaged)

	if _, err := f.lifecycle.Deactivate(ctx, "LC-1"); err != nil {
		t.Fatalf("Deactivate() = %v", err)
	}
	if status() != store.CertOnHold {
		t.Errorf("certificate after Deactivate = %s, want ON_HOLD", status())
	}
	// A deactivated device comes back only through Activate.
	for name, op := range map[string]func(context.Context, string) (*store.Device, error){"Unsuspend": f.lifecycle.Unsuspend, "Suspend": f.lifecycle.Suspend} {
		if _, err := op(ctx, "LC-1"); !errors.Is(err, attest.ErrTransition) {
			t.Errorf("%s(DEACTIVATED) = %v, want %v", name, err, attest.ErrTransition)
		}
	}
	if c, _ := f.db.GetCertificate(ctx, spareSerial); c.Status != store.CertOnHold || c.RevocationReason != 6 {
		t.Errorf("unused certificate naming the device after Deactivate = %s (reason %d), want ON_HOLD (6)", c.Status, c.RevocationReason)
	}
	wantReason(t, "Verify(DEACTIVATED)", f.verify(t, f.desktopProof(t, key, cert, "LC-1", "")), attest.ReasonCertOnHold)
	// Were the hold lifted by other means, the device state still refuses.
	if err := f.db.UpdateCertificateStatus(ctx, serial, store.CertIssued, time.Time{}, 0); err != nil {
		t.Fatal(err)
	}
	wantReason(t, "Verify(DEACTIVATED, hold lifted)", f.verify(t, f.desktopProof(t, key, cert, "LC-1", "")), attest.ReasonDeviceDeactivated)
	if _, err := f.lifecycle.Activate(ctx, "LC-1"); err != nil {
		t.Fatalf("Activate() = %v", err)
	}
	if status() != store.CertIssued {
		t.Errorf("certificate after Activate = %s, want ISSUED", status())
	}
	wantReason(t, "Verify(reactivated)", f.verify(t, f.desktopProof(t, key, cert, "LC-1", "")), attest.ReasonManaged)

	if _, err := f.lifecycle.Delete(ctx, "LC-1"); err != nil {
		t.Fatalf("Delete() = %v", err)
	}
	for _, s := range []string{serial, spareSerial} {
		if c, _ := f.db.GetCertificate(ctx, s); c.Status != store.CertRevoked || c.RevocationReason != attest.ReasonCessationOfOperation {
			t.Errorf("certificate %s after Delete = %s (reason %d), want REVOKED (5)", s, c.Status, c.RevocationReason)
		}
	}
	wantReason(t, "Verify(deleted)", f.verify(t, f.desktopProof(t, key, cert, "LC-1", "")), attest.ReasonCertRevoked)
	if _, err := f.lifecycle.Activate(ctx, "LC-1"); !errors.Is(err, attest.ErrTransition) {
		t.Errorf("Activate(DELETED) = %v, want %v", err, attest.ErrTransition)
	}

	// Redeployed: a new certificate starts the device afresh.
	key3 := testpki.RSAKeyN(t, 2048, 3)
	fresh := f.issue(t, key3, "carol managementAttestation LC-1")
	dc = f.verify(t, f.desktopProof(t, key3, fresh, "LC-1", ""))
	wantReason(t, "Verify(redeployed)", dc, attest.ReasonManaged)
	if dc.DeviceStatus != store.DeviceActive {
		t.Errorf("redeployed device status = %q, want ACTIVE", dc.DeviceStatus)
	}
}

// TestVerifyDeletedBYOCertificate: an uploaded issuer's certificate cannot
// be revoked by us; deleting its device refuses it through its binding.
func TestVerifyDeletedBYOCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	byo := f.uploadBYO(t)
	key := testpki.NewECKey(t, elliptic.P256())
	cert := byo.issue(t, key.Public(), "dave managementAttestation BYO-1")
	dc := f.verify(t, f.desktopProof(t, key, cert, "BYO-1", ""))
	wantReason(t, "Verify(BYO)", dc, attest.ReasonManaged)
	if dc.User != "dave" || dc.Certificate.IssuerID != byo.id {
		t.Errorf("Verify(BYO) = user %q issuer %q, want dave and %s", dc.User, dc.Certificate.IssuerID, byo.id)
	}
	if _, err := f.lifecycle.Delete(t.Context(), "BYO-1"); err != nil {
		t.Fatal(err)
	}
	wantReason(t, "Verify(BYO, device deleted)", f.verify(t, f.desktopProof(t, key, cert, "BYO-1", "")), attest.ReasonCertRevoked)
}

// TestVerifyBYO: an uploaded intermediate's certificates are trusted, and
// its CRL decides revocation (PROTOCOLS.md §5 item 19).
func TestVerifyBYO(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	byo := f.uploadBYO(t)
	good := testpki.NewECKey(t, elliptic.P256())
	revoked := testpki.NewECKey(t, elliptic.P384())
	held := testpki.RSAKeyN(t, 2048, 4)
	goodCert := byo.issue(t, good.Public(), "good")
	revokedCert := byo.issue(t, revoked.Public(), "revoked")
	heldCert := byo.issue(t, held.Public(), "held")

	n, err := f.svc.NewNonce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(n.Issuers, func(i attest.IssuerInfo) bool { return i.ID == byo.id }) ||
		!slices.ContainsFunc(n.Issuers, func(i attest.IssuerInfo) bool { return i.ID == f.ca.IntermediateID() }) {
		t.Errorf("NewNonce().Issuers = %+v, want ours and the uploaded one", n.Issuers)
	}

	byo.setCRL(t, f.clock.Now(), 24*time.Hour,
		x509.RevocationListEntry{SerialNumber: revokedCert.SerialNumber, RevocationTime: f.clock.Now(), ReasonCode: 1},
		x509.RevocationListEntry{SerialNumber: heldCert.SerialNumber, RevocationTime: f.clock.Now(), ReasonCode: 6},
	)
	wantReason(t, "Verify(BYO good)", f.verify(t, f.desktopProof(t, good, goodCert, "g", "")), attest.ReasonManaged)
	wantReason(t, "Verify(BYO listed in CRL)", f.verify(t, f.desktopProof(t, revoked, revokedCert, "r", "")), attest.ReasonCertRevoked)
	wantReason(t, "Verify(BYO on hold in CRL)", f.verify(t, f.desktopProof(t, held, heldCert, "h", "")), attest.ReasonCertOnHold)
	if got := byo.fetches.Load(); got != 1 {
		t.Errorf("CRL fetched %d times for three proofs, want 1 (cached until nextUpdate)", got)
	}

	// No key usage digitalSignature.
	kuCert := byo.issue(t, good.Public(), "ku", testpki.WithTemplate(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }))
	wantReason(t, "Verify(BYO without digitalSignature)", f.verify(t, f.desktopProof(t, good, kuCert, "ku", "")), attest.ReasonCertKeyUsage)

	// No distribution point: fail closed.
	noCDP := byo.h.Issue(t, good.Public(), "no-cdp")
	wantReason(t, "Verify(BYO without CRL distribution point)", f.verify(t, f.desktopProof(t, good, noCDP, "n", "")), attest.ReasonCRLUnavailable)

	// Deleting the uploaded CA removes trust.
	if err := f.db.DeleteCA(t.Context(), byo.id); err != nil {
		t.Fatal(err)
	}
	f.svc.TrustChanged()
	wantReason(t, "Verify(BYO after delete)", f.verify(t, f.desktopProof(t, good, goodCert, "g", "")), attest.ReasonUntrustedIssuer)
}

// TestVerifyUnknownOwnCertificate: a certificate our intermediate signed
// that is not on record is refused (fail closed).
func TestVerifyUnknownOwnCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	key := testpki.NewRSAKey(t, 2048)
	cert := f.issue(t, key, "ghost")
	g := newFixture(t, "") // another store, same CA records
	cas, err := f.db.ListCAs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cas {
		if c.ID == f.ca.IntermediateID() {
			if err := g.db.CreateCA(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}
	}
	g.svc.TrustChanged()
	wantReason(t, "Verify(certificate not on record)", g.verify(t, g.desktopProof(t, key, cert, "x", "")), attest.ReasonCertUnknown)
}

// TestVerifyECDSAIssuingCA: an ECDSA intermediate issues and is trusted.
func TestVerifyECDSAIssuingCA(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "ecdsa")
	key := testpki.NewECKey(t, elliptic.P256())
	cert := f.issue(t, key, "ecdsa")
	wantReason(t, "Verify(ECDSA CA)", f.verify(t, f.desktopProof(t, key, cert, "e", "")), attest.ReasonManaged)
}

// TestVerifyConcurrentBinding: devices racing with one certificate, each
// with its own valid proof: exactly one is managed.
func TestVerifyConcurrentBinding(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	key := testpki.NewECKey(t, elliptic.P256())
	cert := f.issue(t, key, "race")
	const n = 16
	reqs := make([]*attest.Proof, n)
	for i := range reqs {
		reqs[i] = decode(t, f.desktopProof(t, key, cert, "racer-"+string(rune('a'+i)), ""))
	}
	results := make([]*attest.DeviceContext, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Go(func() { results[i], errs[i] = f.svc.Verify(t.Context(), reqs[i]) })
	}
	wg.Wait()
	managed := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("Verify(racer %d) = %v", i, errs[i])
		}
		switch results[i].Reason {
		case attest.ReasonManaged:
			managed++
		case attest.ReasonCertBoundToOther:
		default:
			t.Errorf("Verify(racer %d) = %s, want MANAGED or CERT_BOUND_TO_OTHER_DEVICE", i, results[i].Reason)
		}
	}
	if managed != 1 {
		t.Errorf("%d racing devices: %d managed, want exactly 1", n, managed)
	}
}

// TestVerifyConcurrentReplay: one valid proof sent many times at once is
// managed exactly once; the others are NONCE_USED (the nonce is consumed
// in the write that records the attestation, re-checked atomically).
func TestVerifyConcurrentReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	key := testpki.NewECKey(t, elliptic.P256())
	p := decode(t, f.desktopProof(t, key, f.issue(t, key, "replay"), "R", ""))
	const n = 20
	reasons := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			dc, err := f.svc.Verify(t.Context(), p)
			if err != nil {
				t.Errorf("Verify() = %v", err)
				return
			}
			reasons[i] = dc.Reason
		})
	}
	wg.Wait()
	managed := 0
	for _, r := range reasons {
		switch r {
		case attest.ReasonManaged:
			managed++
		case attest.ReasonNonceUsed:
		default:
			t.Errorf("Verify(replayed proof) = %s, want MANAGED or NONCE_USED", r)
		}
	}
	if managed != 1 {
		t.Errorf("%d concurrent presentations of one proof: %d managed, want 1", n, managed)
	}
}
