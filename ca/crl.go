package ca

import (
	"context"
	"fmt"
	"time"
)

// crlValidity is how long a CRL is valid (its nextUpdate).
const crlValidity = 24 * time.Hour

// reasonCertificateHold is the RFC 5280 CRLReason for a hold.
const reasonCertificateHold = 6

// CRL returns a freshly signed DER CRL of the issuing CA id (see Issuer),
// built as Revocation.CRL builds it but without the cache (RFC 5280 §5;
// holds carry reason certificateHold). The server answers GetCRL and /crl/
// from a Revocation; this is for callers without one.
func (a *Authority) CRL(ctx context.Context, id string) ([]byte, error) {
	cert, key, ok := a.Issuer(id)
	if !ok {
		return nil, fmt.Errorf("ca: crl %s: %w", id, ErrUnknownCA)
	}
	now := a.cfg.Now().UTC()
	entries, _, err := crlEntries(ctx, a.st, id, now)
	if err != nil {
		return nil, err
	}
	c, err := signCRL(cert, key, entries, now)
	if err != nil {
		return nil, err
	}
	return c.DER, nil
}
