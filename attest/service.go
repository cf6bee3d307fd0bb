package attest

import (
	"context"
	"errors"
)

// Service is the verifier as the HTTP API uses it: nonces with the list of
// trusted issuers, proofs, and trust changes.
type Service struct {
	nonces   *Nonces
	anchors  *Anchors
	verifier *Verifier
}

// NewService combines the parts.
func NewService(n *Nonces, a *Anchors, v *Verifier) (*Service, error) {
	if n == nil || a == nil || v == nil {
		return nil, errors.New("attest: service: nonces, anchors and verifier are required")
	}
	return &Service{nonces: n, anchors: a, verifier: v}, nil
}

// NewNonce mints a nonce and lists the trusted issuers.
func (s *Service) NewNonce(ctx context.Context) (*NonceResponse, error) {
	issuers, err := s.anchors.Issuers(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.nonces.Mint(ctx)
	if err != nil {
		return nil, err
	}
	out := &NonceResponse{Nonce: n.Value, ExpiresAt: n.ExpiresAt, Issuers: make([]IssuerInfo, 0, len(issuers))}
	for _, iss := range issuers {
		out.Issuers = append(out.Issuers, IssuerInfo{ID: iss.ID, Subject: iss.Cert.Subject.String(), SHA256: iss.SHA256})
	}
	return out, nil
}

// Verify checks a proof (Verifier.Verify).
func (s *Service) Verify(ctx context.Context, p *Proof) (*DeviceContext, error) {
	return s.verifier.Verify(ctx, p)
}

// TrustChanged reloads the trust anchors at the next use, after an upload
// or a delete of an intermediate.
func (s *Service) TrustChanged() { s.anchors.Invalidate() }
