package ca

import (
	"context"
	"time"
)

// crlValidity is how long a CRL is valid (its nextUpdate).
const crlValidity = 24 * time.Hour

// reasonCertificateHold is the RFC 5280 CRLReason for a hold.
const reasonCertificateHold = 6

// CRL returns a freshly signed DER CRL of the active intermediate, built
// as Revocation.CRL builds it but without the cache (RFC 5280 §5; holds
// carry reason certificateHold). The server answers GetCRL and /crl/ from
// a Revocation; this is for callers without one.
func (a *Authority) CRL(ctx context.Context) ([]byte, error) {
	now := a.cfg.Now().UTC()
	entries, _, err := crlEntries(ctx, a.st, a.interID, now)
	if err != nil {
		return nil, err
	}
	c, err := signCRL(a.inter, a.interKey, entries, now)
	if err != nil {
		return nil, err
	}
	return c.DER, nil
}
