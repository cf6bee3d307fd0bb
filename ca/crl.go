package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"time"

	"github.com/scepca/scepca/store"
)

// crlValidity is how long a CRL is valid (its nextUpdate).
const crlValidity = 24 * time.Hour

// reasonCertificateHold is the RFC 5280 CRLReason for a hold.
const reasonCertificateHold = 6

// CRL returns a freshly signed DER CRL of the active intermediate listing
// every certificate it issued that is revoked or on hold (RFC 5280 §5; holds
// carry reason certificateHold). The CRL number is the signing time in
// nanoseconds, so it grows monotonically across restarts and replicas whose
// clocks agree.
func (a *Authority) CRL(ctx context.Context) ([]byte, error) {
	s := a.snap()
	var entries []x509.RevocationListEntry
	for _, status := range []string{store.CertRevoked, store.CertOnHold} {
		certs, err := a.st.ListCertificates(ctx, store.CertFilter{CAID: s.interID, Status: status})
		if err != nil {
			return nil, fmt.Errorf("ca: crl: %w", err)
		}
		for _, c := range certs {
			serial, err := ParseSerial(c.Serial)
			if err != nil {
				return nil, fmt.Errorf("ca: crl: stored serial %q: %w", c.Serial, err)
			}
			reason := c.RevocationReason
			if status == store.CertOnHold {
				reason = reasonCertificateHold
			}
			entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: c.RevokedAt, ReasonCode: reason})
		}
	}
	now := a.cfg.Now().UTC()
	tmpl := &x509.RevocationList{
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now,
		NextUpdate:                now.Add(crlValidity),
		RevokedCertificateEntries: entries,
		SignatureAlgorithm:        s.sigAlg,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, s.inter, s.interKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign crl: %w", err)
	}
	return der, nil
}
