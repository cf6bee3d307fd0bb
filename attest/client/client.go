// Package client is the Go client of scepca's attestation verifier, for
// services that ask whether a device is managed and for tools that act as
// the device (`scepca attest`). It signs exactly attest.Message, the bytes
// the verifier checks. It depends on attest only for that message and the
// wire types.
package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/scepca/scepca/attest"
)

// Paths of the verifier API (docs/attestation.md).
const (
	NoncesPath = "/api/v1/attestation/nonces"
	VerifyPath = "/api/v1/attestation/verify"
)

// maxResponse bounds a response body.
const maxResponse = 1 << 20

// Client talks to one scepca server.
type Client struct {
	// URL is the server's base URL, e.g. "https://scepca.example.com".
	URL string
	// Token is the bearer token: an ADMIN token or, better for a sign-in
	// service, a VERIFY-scoped one (scepca token create --scope verify).
	Token string
	// HTTP is the client to use; nil means http.DefaultClient.
	HTTP *http.Client
}

// APIError is an answer other than 2xx: the server's problem document.
type APIError struct {
	Status int
	Title  string
	Detail string
}

func (e *APIError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("scepca: HTTP %d: %s", e.Status, e.Detail)
	}
	return fmt.Sprintf("scepca: HTTP %d %s", e.Status, e.Title)
}

// Nonce asks for a fresh nonce and the trusted issuers.
func (c *Client) Nonce(ctx context.Context) (*attest.NonceResponse, error) {
	var out attest.NonceResponse
	if err := c.post(ctx, NoncesPath, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Verify sends a proof and returns the device context. A proof that fails
// is not an error: the context says Managed false and why.
func (c *Client) Verify(ctx context.Context, req *attest.VerifyRequest) (*attest.DeviceContext, error) {
	var out attest.DeviceContext
	if err := c.post(ctx, VerifyPath, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AttestDesktop acts as a desktop device: it fetches a nonce, signs it with
// key (the private key of cert) and verifies the proof. alg may be empty
// for the key's default (RSA_PKCS1_SHA256 or ECDSA_SHA256).
func (c *Client) AttestDesktop(ctx context.Context, key crypto.Signer, cert *x509.Certificate, deviceID, platform, alg string) (*attest.DeviceContext, error) {
	n, err := c.Nonce(ctx)
	if err != nil {
		return nil, err
	}
	req, err := SignDesktop(key, cert, n.Nonce, deviceID, platform, alg)
	if err != nil {
		return nil, err
	}
	return c.Verify(ctx, req)
}

// AttestMobile acts as a phone: it fetches a nonce and proves knowledge of
// the managementHint with HMAC-SHA256 (the hint never travels).
func (c *Client) AttestMobile(ctx context.Context, integrationID string, hint attest.Hint, deviceID, platform string) (*attest.DeviceContext, error) {
	n, err := c.Nonce(ctx)
	if err != nil {
		return nil, err
	}
	return c.Verify(ctx, SignMobile(hint, integrationID, n.Nonce, deviceID, platform))
}

// SignDesktop builds the proof of a desktop device for nonce: key signs
// attest.Message(nonce, deviceID) with SHA-256 under alg (empty: the key's
// default).
func SignDesktop(key crypto.Signer, cert *x509.Certificate, nonce, deviceID, platform, alg string) (*attest.VerifyRequest, error) {
	if key == nil || cert == nil {
		return nil, errors.New("attest client: a key and its certificate are required")
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("attest client: the key does not belong to the certificate")
	}
	if alg == "" {
		switch key.Public().(type) {
		case *rsa.PublicKey:
			alg = attest.AlgRSAPKCS1SHA256
		case *ecdsa.PublicKey:
			alg = attest.AlgECDSASHA256
		default:
			return nil, fmt.Errorf("attest client: unsupported key type %T", key.Public())
		}
	}
	var opts crypto.SignerOpts = crypto.SHA256
	switch alg {
	case attest.AlgRSAPKCS1SHA256, attest.AlgECDSASHA256:
	case attest.AlgRSAPSSSHA256:
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	default:
		return nil, fmt.Errorf("attest client: unknown signature algorithm %q", alg)
	}
	digest := sha256.Sum256(attest.Message(nonce, deviceID))
	sig, err := key.Sign(rand.Reader, digest[:], opts)
	if err != nil {
		return nil, fmt.Errorf("attest client: sign: %w", err)
	}
	return &attest.VerifyRequest{
		Nonce:              nonce,
		DeviceID:           deviceID,
		Platform:           platform,
		Certificate:        base64.StdEncoding.EncodeToString(cert.Raw),
		Signature:          base64.StdEncoding.EncodeToString(sig),
		SignatureAlgorithm: alg,
	}, nil
}

// SignMobile builds the proof of a phone for nonce: HMAC-SHA256 of
// attest.Message(nonce, deviceID) keyed by the managementHint.
func SignMobile(hint attest.Hint, integrationID, nonce, deviceID, platform string) *attest.VerifyRequest {
	return &attest.VerifyRequest{
		Nonce:         nonce,
		DeviceID:      deviceID,
		Platform:      platform,
		IntegrationID: integrationID,
		HMAC:          base64.StdEncoding.EncodeToString(attest.MobileProof(hint, nonce, deviceID)),
	}
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("attest client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("attest client: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("attest client: read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(data, &p) // a non-JSON error body still yields the status
		return &APIError{Status: resp.StatusCode, Title: p.Title, Detail: p.Detail}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("attest client: decode %s answer: %w", path, err)
	}
	return nil
}
