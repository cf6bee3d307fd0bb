package attest_test

import (
	"bytes"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/internal/testpki"
)

// TestDecodeVerifyRequest: malformed requests are *RequestError with a
// detail naming the problem; well-formed ones decode (PROTOCOLS.md §4.2,
// docs/attestation.md).
func TestDecodeVerifyRequest(t *testing.T) {
	t.Parallel()
	key := testpki.NewECKey(t, elliptic.P256())
	cert := testpki.SelfSigned(t, key, "c")
	certB64 := base64.StdEncoding.EncodeToString(cert.Raw)
	sig := base64.StdEncoding.EncodeToString(make([]byte, 64))
	desktop := func(edit func(m map[string]any)) string {
		m := map[string]any{"nonce": "n", "deviceId": "d", "platform": "MACOS", "certificate": certB64, "signature": sig, "signatureAlgorithm": "ECDSA_SHA256"}
		if edit != nil {
			edit(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	mobile := func(edit func(m map[string]any)) string {
		m := map[string]any{"nonce": "n", "deviceId": "d", "platform": "IOS", "integrationId": "int1", "hmac": base64.StdEncoding.EncodeToString(make([]byte, 32))}
		if edit != nil {
			edit(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	wrapped := func(s string) string {
		var b strings.Builder
		for len(s) > 64 {
			b.WriteString(s[:64] + "\n")
			s = s[64:]
		}
		return b.String() + s
	}
	tests := []struct {
		name   string
		body   string
		detail string // "" means accepted
	}{
		{"desktop", desktop(nil), ""},
		{"desktop, chain", desktop(func(m map[string]any) { m["chain"] = []string{certB64} }), ""},
		{"desktop, base64url unpadded", desktop(func(m map[string]any) {
			m["certificate"] = base64.RawURLEncoding.EncodeToString(cert.Raw)
		}), ""},
		{"desktop, base64 wrapped at 64 columns", desktop(func(m map[string]any) { m["certificate"] = wrapped(certB64) }), ""},
		{"mobile hmac", mobile(nil), ""},
		{"mobile plain hint", mobile(func(m map[string]any) { delete(m, "hmac"); m["managementHint"] = "hint-1234" }), ""},
		{"not JSON", "nonce=n", "invalid JSON body"},
		{"empty body", "", "empty or truncated"},
		{"array", "[]", "invalid JSON body"},
		{"unknown field", desktop(func(m map[string]any) { m["extra"] = 1 }), `unknown field "extra"`},
		{"trailing data", desktop(nil) + "{}", "trailing data"},
		{"wrong type", desktop(func(m map[string]any) { m["nonce"] = 5 }), `field "nonce" must be string`},
		{"no nonce", desktop(func(m map[string]any) { delete(m, "nonce") }), "nonce is required"},
		{"nonce with a newline", desktop(func(m map[string]any) { m["nonce"] = "a\nb" }), "nonce must be"},
		{"no device ID", desktop(func(m map[string]any) { delete(m, "deviceId") }), "deviceId is required"},
		{"device ID with a newline", desktop(func(m map[string]any) { m["deviceId"] = "a\nb" }), "control characters"},
		{"device ID too long", desktop(func(m map[string]any) { m["deviceId"] = strings.Repeat("d", 257) }), "at most 256"},
		{"device ID with padding", desktop(func(m map[string]any) { m["deviceId"] = " d" }), "white space"},
		{"no platform", desktop(func(m map[string]any) { delete(m, "platform") }), "platform is required"},
		{"bad platform", desktop(func(m map[string]any) { m["platform"] = "LINUX" }), "platform must be"},
		{"no certificate", desktop(func(m map[string]any) { delete(m, "certificate") }), "certificate is required"},
		{"certificate not base64", desktop(func(m map[string]any) { m["certificate"] = "%%%" }), "certificate must be base64"},
		{"certificate garbage", desktop(func(m map[string]any) { m["certificate"] = base64.StdEncoding.EncodeToString([]byte("garbage")) }), "not a DER X.509 certificate"},
		{"certificate as PEM", desktop(func(m map[string]any) { m["certificate"] = "-----BEGIN CERTIFICATE-----" }), "certificate must be base64"},
		{"bad chain", desktop(func(m map[string]any) { m["chain"] = []string{"AAAA"} }), "chain[0] is not"},
		{"long chain", desktop(func(m map[string]any) { m["chain"] = []string{certB64, certB64, certB64, certB64, certB64} }), "at most 4"},
		{"no algorithm", desktop(func(m map[string]any) { delete(m, "signatureAlgorithm") }), "signatureAlgorithm is required"},
		{"bad algorithm", desktop(func(m map[string]any) { m["signatureAlgorithm"] = "RSA_SHA1" }), "signatureAlgorithm must be"},
		{"no signature", desktop(func(m map[string]any) { delete(m, "signature") }), "signature is required"},
		{"signature not base64", desktop(func(m map[string]any) { m["signature"] = "!!" }), "signature must be base64"},
		{"desktop, tpm", desktop(func(m map[string]any) {
			m["tpm"] = map[string]string{"akPublic": "AAE=", "certifyInfo": "AAE=", "signature": "AAE=", "keyPublic": "AAE="}
		}), ""},
		{"tpm field missing", desktop(func(m map[string]any) {
			m["tpm"] = map[string]string{"akPublic": "AAE=", "certifyInfo": "AAE=", "signature": "AAE="}
		}), "tpm.keyPublic must be base64"},
		{"tpm field not base64", desktop(func(m map[string]any) {
			m["tpm"] = map[string]string{"akPublic": "!!", "certifyInfo": "AAE=", "signature": "AAE=", "keyPublic": "AAE="}
		}), "tpm.akPublic must be base64"},
		{"mobile with tpm", mobile(func(m map[string]any) { m["tpm"] = map[string]string{} }), "apply to MACOS and WINDOWS"},
		{"desktop with hmac", desktop(func(m map[string]any) { m["hmac"] = "AAAA" }), "apply to IOS and ANDROID"},
		{"mobile with certificate", mobile(func(m map[string]any) { m["certificate"] = certB64 }), "apply to MACOS and WINDOWS"},
		{"mobile without integration", mobile(func(m map[string]any) { delete(m, "integrationId") }), "integrationId is required"},
		{"mobile without proof", mobile(func(m map[string]any) { delete(m, "hmac") }), "hmac is required"},
		{"mobile with both proofs", mobile(func(m map[string]any) { m["managementHint"] = "hint-1234" }), "not both"},
		{"short hmac", mobile(func(m map[string]any) { m["hmac"] = base64.StdEncoding.EncodeToString(make([]byte, 20)) }), "32-byte"},
		{"long hint", mobile(func(m map[string]any) { delete(m, "hmac"); m["managementHint"] = strings.Repeat("h", 257) }), "at most 256"},
		{"too large", `{"nonce":"` + strings.Repeat("n", attest.MaxRequestBytes) + `"}`, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := attest.DecodeVerifyRequest(strings.NewReader(tc.body))
			if tc.detail == "" {
				if err != nil || p == nil {
					t.Fatalf("DecodeVerifyRequest(%.80s) = %v, want a proof", tc.body, err)
				}
				return
			}
			re, ok := errors.AsType[*attest.RequestError](err)
			if !ok || !strings.Contains(re.Detail, tc.detail) {
				t.Errorf("DecodeVerifyRequest(%.80s) = %v, want a *RequestError naming %q", tc.body, err, tc.detail)
			}
			if tc.name == "too large" && (!ok || !re.TooLarge) {
				t.Errorf("DecodeVerifyRequest(too large) = %v, want TooLarge", err)
			}
		})
	}
	// The decoded certificate hash is the binding key.
	p, err := attest.DecodeVerifyRequest(bytes.NewReader([]byte(desktop(nil))))
	if err != nil || len(p.CertSHA256) != 64 || strings.ToUpper(p.CertSHA256) != p.CertSHA256 || !p.Certificate.Equal(cert) {
		t.Errorf("DecodeVerifyRequest(desktop) = %+v, %v, want the certificate and its uppercase SHA-256", p, err)
	}
}
