package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/scepca/scepca/store"
)

// OCSP answers a DER OCSP request (RFC 6960) for one certificate, signed
// directly by the key of the CA that issued it (no delegated responder).
// The status is read from the store on every request, so a change is
// visible at once on every replica sharing the store:
//
//   - ISSUED → good;
//   - REVOKED → revoked, with the revocation time and reason;
//   - ON_HOLD → revoked with reason certificateHold;
//   - a serial this CA never issued → unknown.
//
// A request that does not parse gets the malformedRequest response and an
// error wrapping ErrOCSPMalformed; a request naming an issuer we do not sign
// for gets the unauthorized response and an error wrapping
// ErrOCSPUnauthorized. Those answers are what the client should receive;
// the error says why, for the log. Other errors come with the
// internalError response. Only the first request of the list is answered,
// and the nonce extension is not echoed (RFC 5019 lightweight profile).
func (r *Revocation) OCSP(ctx context.Context, der []byte) ([]byte, error) {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse, fmt.Errorf("%w: %v", ErrOCSPMalformed, err)
	}
	if req.SerialNumber == nil || req.SerialNumber.Sign() <= 0 {
		return ocsp.MalformedRequestErrorResponse, fmt.Errorf("%w: serial number is not positive", ErrOCSPMalformed)
	}
	if !req.HashAlgorithm.Available() {
		return ocsp.MalformedRequestErrorResponse, fmt.Errorf("%w: hash %v not available", ErrOCSPMalformed, req.HashAlgorithm)
	}
	caID, issuer, err := r.ocspIssuer(ctx, req)
	if err != nil {
		return ocsp.InternalErrorErrorResponse, err
	}
	if issuer == nil {
		return ocsp.UnauthorizedErrorResponse, ErrOCSPUnauthorized
	}
	cert, key, ok := r.issuers.Issuer(caID)
	if !ok || !cert.Equal(issuer) {
		return ocsp.UnauthorizedErrorResponse, ErrOCSPUnauthorized
	}

	now := r.now().UTC()
	tmpl := ocsp.Response{
		Status:       ocsp.Unknown,
		SerialNumber: req.SerialNumber,
		ThisUpdate:   now,
		NextUpdate:   now.Add(ocspValidity),
		IssuerHash:   req.HashAlgorithm,
	}
	rec, err := r.st.GetCertificate(ctx, SerialString(req.SerialNumber))
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return ocsp.InternalErrorErrorResponse, fmt.Errorf("ca: ocsp: %w", err)
	case rec.CAID != caID:
		// Issued by another of our CAs, not the one the request names.
	case rec.Status == store.CertIssued:
		tmpl.Status = ocsp.Good
	case rec.Status == store.CertRevoked:
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, revokedAt(rec), rec.RevocationReason
	case rec.Status == store.CertOnHold:
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, revokedAt(rec), ocsp.CertificateHold
	default:
		return ocsp.InternalErrorErrorResponse, fmt.Errorf("ca: ocsp: certificate %s has status %q", rec.Serial, rec.Status)
	}
	resp, err := ocsp.CreateResponse(cert, cert, tmpl, key)
	if err != nil {
		return ocsp.InternalErrorErrorResponse, fmt.Errorf("ca: ocsp: sign: %w", err)
	}
	return resp, nil
}

func revokedAt(c *store.Certificate) time.Time {
	if c.RevokedAt.IsZero() {
		return c.IssuedAt
	}
	return c.RevokedAt
}

// ocspIssuer finds the issuing CA whose name and key hashes the request
// carries; issuer is nil when none matches.
func (r *Revocation) ocspIssuer(ctx context.Context, req *ocsp.Request) (id string, issuer *x509.Certificate, err error) {
	cas, err := r.st.ListCAs(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("ca: ocsp: %w", err)
	}
	for _, rec := range cas {
		cert, _, ok := r.issuers.Issuer(rec.ID)
		if !ok {
			continue
		}
		h := req.HashAlgorithm.New()
		h.Write(cert.RawSubject)
		if bytes.Equal(h.Sum(nil), req.IssuerNameHash) && sameKeyHash(req.HashAlgorithm, cert, req.IssuerKeyHash) {
			return rec.ID, cert, nil
		}
	}
	return "", nil, nil
}

// publicKeyBits returns the subjectPublicKey BIT STRING contents of cert.
func publicKeyBits(cert *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil || len(rest) > 0 {
		return nil, errors.New("ca: malformed SubjectPublicKeyInfo")
	}
	return spki.PublicKey.RightAlign(), nil
}
