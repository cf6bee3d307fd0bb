package admin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/scepca/scepca/attest"
)

// The attestation verifier's HTTP API (docs/attestation.md): nonces and
// proofs. A malformed request is a problem document (400, 413); a
// well-formed proof that fails is 200 with managed false and a reason. The
// routes take an ADMIN or a VERIFY-scoped bearer token (tokens.go).

// Attestation is the verifier as the API uses it; *attest.Service
// implements it.
type Attestation interface {
	NewNonce(ctx context.Context) (*attest.NonceResponse, error)
	Verify(ctx context.Context, p *attest.Proof) (*attest.DeviceContext, error)
	// TrustChanged is called after an intermediate is uploaded or deleted.
	TrustChanged()
}

// maxNonceBody bounds the (empty) body of a nonce request.
const maxNonceBody = 1 << 10

func (a *API) attestation() (Attestation, error) {
	if a.attest == nil {
		return nil, problemf(http.StatusServiceUnavailable, "the attestation verifier is not configured on this server")
	}
	return a.attest, nil
}

// attestationNonce mints a nonce. The body is empty or an empty JSON
// object.
func (a *API) attestationNonce(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.attestation()
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxNonceBody+1))
	if err != nil {
		return problemf(http.StatusBadRequest, "reading the body failed")
	}
	switch string(bytes.TrimSpace(body)) {
	case "", "{}":
	default:
		return problemf(http.StatusBadRequest, "a nonce request has no parameters: send no body or {}")
	}
	n, err := svc.NewNonce(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, n)
}

// attestationVerify checks a proof and answers the device context.
func (a *API) attestationVerify(w http.ResponseWriter, r *http.Request) error {
	svc, err := a.attestation()
	if err != nil {
		return err
	}
	p, err := attest.DecodeVerifyRequest(r.Body)
	if re, ok := errors.AsType[*attest.RequestError](err); ok {
		status := http.StatusBadRequest
		if re.TooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		return &problemError{status: status, detail: re.Detail, err: err}
	}
	if err != nil {
		return err
	}
	dc, err := svc.Verify(r.Context(), p)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, dc)
}
