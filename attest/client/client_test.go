package client_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/attest/client"
	"github.com/scepca/scepca/internal/testpki"
)

// TestSignDesktop: each algorithm signs exactly attest.Message with SHA-256,
// checked here with the standard library, not with the verifier.
func TestSignDesktop(t *testing.T) {
	t.Parallel()
	rsaKey := testpki.NewRSAKey(t, 2048)
	ecKey := testpki.NewECKey(t, elliptic.P256())
	rsaCert, ecCert := testpki.SelfSigned(t, rsaKey, "r"), testpki.SelfSigned(t, ecKey, "e")
	digest := sha256.Sum256(attest.Message("N0NCE", "DEV"))
	tests := []struct {
		name, alg, want string
		key             crypto.Signer
		cert            *x509.Certificate
		verify          func(sig []byte) bool
	}{
		{"RSA default", "", attest.AlgRSAPKCS1SHA256, rsaKey, rsaCert, func(sig []byte) bool {
			return rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, digest[:], sig) == nil
		}},
		{"RSA-PSS", attest.AlgRSAPSSSHA256, attest.AlgRSAPSSSHA256, rsaKey, rsaCert, func(sig []byte) bool {
			return rsa.VerifyPSS(&rsaKey.PublicKey, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: sha256.Size}) == nil
		}},
		{"ECDSA default", "", attest.AlgECDSASHA256, ecKey, ecCert, func(sig []byte) bool {
			return ecdsa.VerifyASN1(&ecKey.PublicKey, digest[:], sig)
		}},
	}
	for _, tc := range tests {
		req, err := client.SignDesktop(tc.key, tc.cert, "N0NCE", "DEV", attest.PlatformWindows, tc.alg)
		if err != nil {
			t.Fatalf("SignDesktop(%s) = %v", tc.name, err)
		}
		sig, err := base64.StdEncoding.DecodeString(req.Signature)
		if err != nil || req.SignatureAlgorithm != tc.want || !tc.verify(sig) {
			t.Errorf("SignDesktop(%s) = %s signature that verifies: %v (%v), want %s", tc.name, req.SignatureAlgorithm, tc.verify(sig), err, tc.want)
		}
		if _, err := req.Proof(); err != nil {
			t.Errorf("SignDesktop(%s) request does not decode: %v", tc.name, err)
		}
	}
	if _, err := client.SignDesktop(rsaKey, ecCert, "N", "D", attest.PlatformMacOS, ""); err == nil {
		t.Error("SignDesktop(key of another certificate) = nil error, want one")
	}
	if _, err := client.SignDesktop(rsaKey, rsaCert, "N", "D", attest.PlatformMacOS, "RSA_SHA1"); err == nil {
		t.Error("SignDesktop(unknown algorithm) = nil error, want one")
	}
}

// TestSignMobile: the HMAC is over attest.Message, keyed by the hint.
func TestSignMobile(t *testing.T) {
	t.Parallel()
	req := client.SignMobile("the-hint-123", "int1", "N0NCE", "phone", attest.PlatformAndroid)
	m := hmac.New(sha256.New, []byte("the-hint-123"))
	m.Write(attest.Message("N0NCE", "phone"))
	if req.HMAC != base64.StdEncoding.EncodeToString(m.Sum(nil)) || req.ManagementHint != "" || req.IntegrationID != "int1" {
		t.Errorf("SignMobile() = %+v, want the HMAC of the message and no plain hint", req)
	}
}

// TestAPIError: a problem document becomes an *APIError; the token is sent
// as a bearer token.
func TestAPIError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.URL.Path != client.NoncesPath {
			t.Errorf("request %s with %q, want %s with the bearer token", r.URL.Path, r.Header.Get("Authorization"), client.NoncesPath)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401,"detail":"invalid bearer token"}`))
	}))
	t.Cleanup(srv.Close)
	_, err := (&client.Client{URL: srv.URL + "/", Token: "tok", HTTP: srv.Client()}).Nonce(t.Context())
	ae, ok := errors.AsType[*client.APIError](err)
	if !ok || ae.Status != http.StatusUnauthorized || ae.Detail != "invalid bearer token" {
		t.Errorf("Nonce() = %v, want an *APIError 401 with the detail", err)
	}
}
