package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/scepca/scepca/store"
)

const (
	// maxSerialAttempts bounds how often Issue draws a new serial after the
	// store reports a collision (with 127 random bits, a second attempt is
	// already a sign of a broken random source or store).
	maxSerialAttempts = 5
	// recordTimeout bounds recording a signed certificate, which runs even
	// when the request's context is canceled.
	recordTimeout = 30 * time.Second
)

// Request asks for one certificate.
type Request struct {
	// CSR is the parsed PKCS #10 request; Prepare checks it with CheckCSR.
	CSR *x509.CertificateRequest
	// IntegrationID and TransactionID are recorded with the certificate;
	// with both set, PutCertificate also completes the SCEP transaction.
	IntegrationID string
	TransactionID string
	// Validity overrides Config.Validity when > 0.
	Validity time.Duration
}

// Token is a prepared, linted certificate template. It is redeemed by
// Issue at most once, and only by the Authority that prepared it.
type Token struct {
	a             *Authority
	s             *snapshot // the issuing state Prepare saw
	tmpl          *x509.Certificate
	pub           crypto.PublicKey
	integrationID string
	transactionID string
	used          atomic.Bool
}

// Prepare checks req.CSR against the policy (CheckCSR, errors wrap
// ErrPolicy), builds the certificate template of PROTOCOLS.md §1.8 and
// lints it by signing a copy with a throwaway key and parsing the result
// (boulder's lint-before-sign), so that the real key only ever signs a
// template that encodes. The returned Token is single-use.
//
// The profile: subject copied byte for byte from the CSR; DNS, email, IP
// and URI SANs copied (never the CN into a DNS SAN); every other requested
// extension ignored; keyUsage digitalSignature (critical), extKeyUsage
// clientAuth, basicConstraints CA:false, SKI and AKI, CRL distribution
// point and OCSP AIA when a public URL is configured; NotBefore five
// minutes in the past, NotAfter = NotBefore + validity - jitter, never
// after the intermediate's NotAfter; a random 16-byte serial.
func (a *Authority) Prepare(ctx context.Context, req *Request) (*Token, error) {
	if req == nil {
		return nil, errors.New("ca: prepare: nil request")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ca: prepare: %w", err)
	}
	if err := CheckCSR(req.CSR); err != nil {
		return nil, err
	}
	validity := req.Validity
	if validity < 0 {
		return nil, fmt.Errorf("ca: prepare: validity %v is negative", validity)
	}
	if validity == 0 {
		validity = a.cfg.Validity
	}
	s := a.snap()
	tmpl, err := a.template(s, req.CSR, validity)
	if err != nil {
		return nil, err
	}
	if err := a.lint(s, tmpl, req.CSR); err != nil {
		return nil, err
	}
	return &Token{
		a:             a,
		s:             s,
		tmpl:          tmpl,
		pub:           req.CSR.PublicKey,
		integrationID: req.IntegrationID,
		transactionID: req.TransactionID,
	}, nil
}

// template builds the issuance profile for csr (see Prepare).
func (a *Authority) template(s *snapshot, csr *x509.CertificateRequest, validity time.Duration) (*x509.Certificate, error) {
	now := a.cfg.Now().UTC()
	if !now.Before(s.inter.NotAfter) {
		return nil, fmt.Errorf("ca: prepare: intermediate %s expired at %v", s.interID, s.inter.NotAfter)
	}
	notBefore := now.Add(-clockSkew).Truncate(time.Second)
	if notBefore.Before(s.inter.NotBefore) {
		notBefore = s.inter.NotBefore
	}
	jitter, err := randDuration(min(a.cfg.Jitter, validity/2))
	if err != nil {
		return nil, err
	}
	notAfter := minTime(notBefore.Add(validity-jitter).Truncate(time.Second), s.inter.NotAfter)
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("ca: prepare: empty validity period %v to %v", notBefore, notAfter)
	}

	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(csr.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		SignatureAlgorithm:    s.sigAlg,
		RawSubject:            bytes.Clone(csr.RawSubject),
		DNSNames:              slices.Clone(csr.DNSNames),
		EmailAddresses:        slices.Clone(csr.EmailAddresses),
		IPAddresses:           slices.Clone(csr.IPAddresses),
		URIs:                  slices.Clone(csr.URIs),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          ski,
		AuthorityKeyId:        s.inter.SubjectKeyId,
	}
	if s.crlURL != "" {
		tmpl.CRLDistributionPoints = []string{s.crlURL}
		tmpl.OCSPServer = []string{s.ocspURL}
	}
	return tmpl, nil
}

// randDuration returns a uniform random duration in [0, limit), or 0 when
// limit <= 0.
func randDuration(limit time.Duration) (time.Duration, error) {
	if limit <= 0 {
		return 0, nil
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(limit)))
	if err != nil {
		return 0, fmt.Errorf("ca: jitter: %w", err)
	}
	return time.Duration(n.Int64()), nil
}

// lint signs a copy of tmpl with the throwaway key, parses it back and
// checks the profile. A template that does not encode is the CSR's fault
// (ErrPolicy); a profile mismatch is ours.
func (a *Authority) lint(s *snapshot, tmpl *x509.Certificate, csr *x509.CertificateRequest) error {
	lt := *tmpl
	lt.SignatureAlgorithm = x509.ECDSAWithSHA256
	der, err := x509.CreateCertificate(rand.Reader, &lt, s.lintIssuer, csr.PublicKey, a.lintKey)
	if err != nil {
		return fmt.Errorf("%w: CSR content does not encode as a certificate: %v", ErrPolicy, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: certificate would not parse: %v", ErrPolicy, err)
	}
	if err := s.checkProfile(c, csr); err != nil {
		return fmt.Errorf("ca: lint: %w", err)
	}
	return nil
}

// checkProfile checks a parsed certificate against the profile of
// PROTOCOLS.md §1.8 for csr, independently of how the template was built.
func (s *snapshot) checkProfile(c *x509.Certificate, csr *x509.CertificateRequest) error {
	issuer := s.inter
	pub, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	var wantPointers []string
	if s.crlURL != "" {
		wantPointers = []string{s.crlURL, s.ocspURL}
	}
	switch {
	case !bytes.Equal(c.RawSubject, csr.RawSubject):
		return errors.New("subject differs from the CSR")
	case !bytes.Equal(c.RawIssuer, issuer.RawSubject):
		return errors.New("issuer differs from the intermediate's subject")
	case !ok || !pub.Equal(csr.PublicKey):
		return errors.New("public key differs from the CSR")
	case c.SerialNumber.Sign() <= 0 || len(c.SerialNumber.Bytes()) > serialLen:
		return errors.New("serial out of range")
	case c.KeyUsage != x509.KeyUsageDigitalSignature:
		return fmt.Errorf("key usage %#x, want digitalSignature", c.KeyUsage)
	case len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || len(c.UnknownExtKeyUsage) > 0:
		return errors.New("extended key usage is not exactly clientAuth")
	case !c.BasicConstraintsValid || c.IsCA:
		return errors.New("not marked CA:false")
	case !bytes.Equal(c.AuthorityKeyId, issuer.SubjectKeyId) || len(c.SubjectKeyId) == 0:
		return errors.New("key identifiers missing or wrong")
	case !c.NotAfter.After(c.NotBefore) || c.NotAfter.After(issuer.NotAfter) || c.NotBefore.Before(issuer.NotBefore):
		return errors.New("validity outside the intermediate's")
	case len(c.UnhandledCriticalExtensions) > 0:
		return errors.New("unhandled critical extension")
	case !slices.Equal(c.DNSNames, csr.DNSNames) || !slices.Equal(c.EmailAddresses, csr.EmailAddresses) ||
		!slices.EqualFunc(c.IPAddresses, csr.IPAddresses, net.IP.Equal) ||
		!slices.EqualFunc(c.URIs, csr.URIs, func(x, y *url.URL) bool { return x.String() == y.String() }):
		return errors.New("subject alternative names differ from the CSR")
	case len(c.Subject.Names) == 0 && len(c.DNSNames)+len(c.EmailAddresses)+len(c.IPAddresses)+len(c.URIs) == 0:
		return errors.New("empty subject and no subject alternative name")
	case !slices.Equal(append(slices.Clone(c.CRLDistributionPoints), c.OCSPServer...), wantPointers) ||
		len(c.IssuingCertificateURL) > 0:
		return errors.New("revocation pointers differ from the configuration")
	}
	return nil
}

// Issue redeems tok: it signs the prepared template with the key of the
// intermediate that was active when tok was prepared and records the certificate with PutCertificate, which is
// put-if-absent on the serial and, with a transaction ID, completes the
// SCEP transaction in the same write. On a serial collision
// (store.ErrExists) it draws a new serial and signs again, at most
// maxSerialAttempts times. It writes an audit line before and after
// signing.
//
// Security invariants: this is the only path to the issuing key; a token is
// redeemed at most once (a second call, even a concurrent one, gets
// ErrTokenUsed, also after a failure); a certificate that could not be
// recorded is not returned.
func (a *Authority) Issue(ctx context.Context, tok *Token) (*x509.Certificate, *store.Certificate, error) {
	if tok == nil || tok.tmpl == nil {
		return nil, nil, errors.New("ca: issue: no token")
	}
	if tok.a != a {
		return nil, nil, errors.New("ca: issue: token prepared by another authority")
	}
	if !tok.used.CompareAndSwap(false, true) {
		return nil, nil, fmt.Errorf("ca: issue: %w", ErrTokenUsed)
	}
	tmpl, s := tok.tmpl, tok.s // owned by this call from here on
	log := a.cfg.Logger.With(attrCAID, s.interID, attrTransactionID, tok.transactionID, attrIntegrationID, tok.integrationID)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("ca: issue: %w", err)
		}
		serial := SerialString(tmpl.SerialNumber)
		log.InfoContext(ctx, "issuing", attrSerial, serial, "attempt", attempt)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, s.inter, tok.pub, s.interKey)
		if err != nil {
			log.ErrorContext(ctx, "signing failed", attrSerial, serial, "error", err)
			return nil, nil, fmt.Errorf("ca: issue %s: %w", serial, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			log.ErrorContext(ctx, "signed certificate does not parse", attrSerial, serial, "error", err)
			return nil, nil, fmt.Errorf("ca: issue %s: %w", serial, err)
		}
		log.InfoContext(ctx, "issued", attrSerial, serial, "subject", cert.Subject.String(), "not_after", cert.NotAfter)

		rec := a.record(cert, tok)
		err = a.put(ctx, rec)
		if err == nil {
			return cert, rec, nil
		}
		if errors.Is(err, store.ErrExists) && attempt < maxSerialAttempts {
			log.WarnContext(ctx, "serial collision, signing again with a new serial", attrSerial, serial)
			if tmpl.SerialNumber, err = newSerial(); err != nil {
				return nil, nil, err
			}
			continue
		}
		log.ErrorContext(ctx, "issued certificate not recorded, discarded", attrSerial, serial, "error", err)
		return nil, nil, fmt.Errorf("ca: record certificate %s: %w", serial, err)
	}
}

// put records a signed certificate. It outlives a canceled request (the
// signature exists; recording it is what keeps retries idempotent) but is
// bounded by recordTimeout.
func (a *Authority) put(ctx context.Context, rec *store.Certificate) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return a.st.PutCertificate(ctx, rec)
}

// record is the store record of cert.
func (a *Authority) record(cert *x509.Certificate, tok *Token) *store.Certificate {
	user, deviceID := ParseSubjectCN(cert.Subject.CommonName)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return &store.Certificate{
		Serial:        SerialString(cert.SerialNumber),
		CAID:          tok.s.interID,
		IntegrationID: tok.integrationID,
		TransactionID: tok.transactionID,
		Subject:       cert.Subject.String(),
		User:          user,
		DeviceID:      deviceID,
		NotBefore:     cert.NotBefore,
		NotAfter:      cert.NotAfter,
		IssuedAt:      a.cfg.Now().UTC(),
		PublicKeyHash: sum[:],
		DER:           cert.Raw,
		Status:        store.CertIssued,
	}
}
