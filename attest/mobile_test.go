package attest_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/client"
	"github.com/scepca/scepca/store"
)

// mobileIntegration stores an integration of platform with hint sealed
// under the fixture's KEK.
func (f *fixture) mobileIntegration(t testing.TB, id, platform string, hint attest.Hint, allowPlain, enabled bool) {
	t.Helper()
	ct, err := attest.SealHint(f.kek, id, hint)
	if err != nil {
		t.Fatal(err)
	}
	in := &store.Integration{ID: id, Name: id, Platform: platform, Enabled: enabled, HintCiphertext: ct, AllowPlainHint: allowPlain, CreatedAt: f.clock.Now()}
	if err := f.db.CreateIntegration(t.Context(), in); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyMobile: PROTOCOLS.md §5 item 20: the HMAC proof is accepted,
// a wrong secret refused; the plain hint only where allowed.
func TestVerifyMobile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	hint, err := attest.GenerateHint()
	if err != nil {
		t.Fatal(err)
	}
	f.mobileIntegration(t, "int-ios", store.PlatformIOS, hint, false, true)
	f.mobileIntegration(t, "int-android", store.PlatformAndroid, "supplied-Hint!42", true, true)
	f.mobileIntegration(t, "int-off", store.PlatformIOS, hint, false, false)

	hmacProof := func(h attest.Hint, integration, device, platform string) *attest.VerifyRequest {
		return client.SignMobile(h, integration, f.nonce(t), device, platform)
	}
	plain := func(h, integration, device, platform string) *attest.VerifyRequest {
		return &attest.VerifyRequest{Nonce: f.nonce(t), DeviceID: device, Platform: platform, IntegrationID: integration, ManagementHint: h}
	}
	tests := []struct {
		name   string
		req    *attest.VerifyRequest
		reason string
	}{
		{"HMAC, iOS", hmacProof(hint, "int-ios", "iphone-1", attest.PlatformIOS), attest.ReasonManaged},
		{"HMAC, supplied hint, Android", hmacProof("supplied-Hint!42", "int-android", "pixel-1", attest.PlatformAndroid), attest.ReasonManaged},
		{"plain hint where allowed", plain("supplied-Hint!42", "int-android", "pixel-2", attest.PlatformAndroid), attest.ReasonManaged},
		{"HMAC with a wrong secret", hmacProof("wrong-secret-123", "int-ios", "iphone-2", attest.PlatformIOS), attest.ReasonHintMismatch},
		{"HMAC over another device ID", func() *attest.VerifyRequest {
			r := hmacProof(hint, "int-ios", "iphone-3", attest.PlatformIOS)
			r.DeviceID = "iphone-4"
			return r
		}(), attest.ReasonHintMismatch},
		{"wrong plain hint", plain("supplied-Hint!43", "int-android", "pixel-3", attest.PlatformAndroid), attest.ReasonHintMismatch},
		{"plain hint where not allowed", plain(hint.Reveal(), "int-ios", "iphone-5", attest.PlatformIOS), attest.ReasonPlainHintNotAllowed},
		{"unknown integration", hmacProof(hint, "int-none", "iphone-6", attest.PlatformIOS), attest.ReasonIntegrationUnknown},
		{"integration of another platform", hmacProof(hint, "int-ios", "pixel-4", attest.PlatformAndroid), attest.ReasonIntegrationUnknown},
		{"disabled integration", hmacProof(hint, "int-off", "iphone-7", attest.PlatformIOS), attest.ReasonIntegrationDisabled},
	}
	t.Run("proofs", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				dc := f.verify(t, tc.req)
				wantReason(t, "Verify("+tc.name+")", dc, tc.reason)
				if dc.Certificate != nil {
					t.Errorf("Verify(%s).Certificate = %+v, want none for a mobile proof", tc.name, dc.Certificate)
				}
				wantReason(t, "Verify("+tc.name+") replayed", f.verify(t, tc.req), attest.ReasonNonceUsed)
			})
		}
	})
	// Lifecycle applies to phones too.
	if _, err := f.lifecycle.Suspend(t.Context(), "iphone-1"); err != nil {
		t.Fatal(err)
	}
	wantReason(t, "Verify(suspended phone)", f.verify(t, hmacProof(hint, "int-ios", "iphone-1", attest.PlatformIOS)), attest.ReasonDeviceSuspended)
}

// TestHintNeverPrints: STYLE.md §5: a managementHint logged or formatted
// by mistake shows REDACTED; neither it nor the sealed form appears in a
// device context.
func TestHintNeverPrints(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-Management-Hint"
	h := attest.Hint(secret)
	var buf bytes.Buffer
	for _, hd := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(hd).Info("hint", "hint", h, "proof", attest.Proof{ManagementHint: h}, "ptr", &h)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fmt.Fprintf(&buf, verb+"\n", h)
		fmt.Fprintf(&buf, verb+"\n", attest.Proof{ManagementHint: h})
	}
	fmt.Fprintln(&buf, fmt.Errorf("wrapped: %v", h))
	if strings.Contains(buf.String(), secret) || !strings.Contains(buf.String(), "REDACTED") {
		t.Errorf("formatted hint output leaks the secret or lacks REDACTED:\n%s", buf.String())
	}
	if h.Reveal() != secret {
		t.Errorf("Reveal() = %q, want the secret", h.Reveal())
	}

	f := newFixture(t, "")
	f.mobileIntegration(t, "int-ios", store.PlatformIOS, h, true, true)
	for _, req := range []*attest.VerifyRequest{
		client.SignMobile(h, "int-ios", f.nonce(t), "p", attest.PlatformIOS),
		{Nonce: f.nonce(t), DeviceID: "p", Platform: attest.PlatformIOS, IntegrationID: "int-ios", ManagementHint: secret},
	} {
		dc := f.verify(t, req)
		out := fmt.Sprintf("%+v", *dc)
		if strings.Contains(out, secret) || dc.Reason != attest.ReasonManaged {
			t.Errorf("Verify() = %s, want managed without the hint", out)
		}
	}
	in, err := f.db.GetIntegration(t.Context(), "int-ios")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(in.HintCiphertext, []byte(secret)) {
		t.Error("the stored integration holds the hint in the clear")
	}
}

// TestCheckHint: supplied hints are 8 to 256 printable ASCII characters
// without whitespace; generated ones are 256-bit base64url.
func TestCheckHint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		hint string
		ok   bool
	}{
		{"12345678", true},
		{"Mixed-Case_and!Symbols#42", true},
		{strings.Repeat("x", 256), true},
		{"1234567", false},
		{strings.Repeat("x", 257), false},
		{"with space", false},
		{"tab\there", false},
		{"newline\nhere", false},
		{"ümlaut-hint", false},
		{"", false},
	}
	for _, tc := range tests {
		if err := attest.CheckHint(attest.Hint(tc.hint)); (err == nil) != tc.ok {
			t.Errorf("CheckHint(%q) = %v, want ok %v", tc.hint, err, tc.ok)
		}
	}
	h, err := attest.GenerateHint()
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(h.Reveal()); err != nil || len(raw) != 32 || attest.CheckHint(h) != nil {
		t.Errorf("GenerateHint() = %d characters (%v), want base64url of 32 bytes that passes CheckHint", len(h), err)
	}
}

// TestMessage pins the exact signed bytes of DESIGN.md §4 and the HMAC.
func TestMessage(t *testing.T) {
	t.Parallel()
	got := attest.Message("n0nce", "DEVICE-1")
	if want := "scepca-attest-v1\nn0nce\nDEVICE-1\n"; string(got) != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
	// Computed independently: HMAC-SHA256 with key
	// "key" over the message, by openssl:
	//   printf 'scepca-attest-v1\nn0nce\nDEVICE-1\n' | openssl dgst -sha256 -mac HMAC -macopt key:key
	const want = "ad9977c3e1a14f9fb6b36ca7aeaa579171f64c23981c5305fcb91857e3142741"
	if got := fmt.Sprintf("%x", attest.MobileProof("key", "n0nce", "DEVICE-1")); got != want {
		t.Errorf("MobileProof() = %s, want %s", got, want)
	}
}

// TestVerifyMobileOverlapAndDeleted: after a reset with an overlap window
// the replaced hint proves management until the window ends; a deleted
// integration is unknown.
func TestVerifyMobileOverlapAndDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	const oldHint, newHint = attest.Hint("old-hint-12345"), attest.Hint("new-hint-67890")
	f.mobileIntegration(t, "int-ios", store.PlatformIOS, newHint, true, true)
	in, err := f.db.GetIntegration(t.Context(), "int-ios")
	if err != nil {
		t.Fatal(err)
	}
	if in.PreviousHintCiphertext, err = attest.SealHint(f.kek, in.ID, oldHint); err != nil {
		t.Fatal(err)
	}
	in.PreviousHintUntil = f.clock.Now().Add(time.Minute)
	if err := f.db.UpdateIntegration(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	proof := func(h attest.Hint, device string) *attest.VerifyRequest {
		return client.SignMobile(h, "int-ios", f.nonce(t), device, attest.PlatformIOS)
	}
	plain := func(h attest.Hint, device string) *attest.VerifyRequest {
		return &attest.VerifyRequest{Nonce: f.nonce(t), DeviceID: device, Platform: attest.PlatformIOS, IntegrationID: "int-ios", ManagementHint: h.Reveal()}
	}
	wantReason(t, "Verify(new hint, in the window)", f.verify(t, proof(newHint, "p1")), attest.ReasonManaged)
	wantReason(t, "Verify(old hint, in the window)", f.verify(t, proof(oldHint, "p2")), attest.ReasonManaged)
	wantReason(t, "Verify(old plain hint, in the window)", f.verify(t, plain(oldHint, "p3")), attest.ReasonManaged)
	f.clock.Add(time.Minute)
	wantReason(t, "Verify(old hint, after the window)", f.verify(t, proof(oldHint, "p2")), attest.ReasonHintMismatch)
	wantReason(t, "Verify(old plain hint, after the window)", f.verify(t, plain(oldHint, "p3")), attest.ReasonHintMismatch)
	wantReason(t, "Verify(new hint, after the window)", f.verify(t, proof(newHint, "p1")), attest.ReasonManaged)

	in.DeletedAt = f.clock.Now()
	if err := f.db.UpdateIntegration(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	wantReason(t, "Verify(deleted integration)", f.verify(t, proof(newHint, "p1")), attest.ReasonIntegrationUnknown)
}
