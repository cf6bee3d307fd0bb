package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scepca/scepca/store"
)

// Revocation errors, matched with errors.Is.
var (
	// ErrUnknownCA: no issuing CA (one whose key this authority holds) has
	// the ID; its CRL is a 404.
	ErrUnknownCA = errors.New("ca: unknown issuing CA")
	// ErrOCSPMalformed: the OCSP request could not be parsed; the answer is
	// the malformedRequest OCSP response (RFC 6960, Section 2.3).
	ErrOCSPMalformed = errors.New("ca: malformed OCSP request")
	// ErrOCSPUnauthorized: the OCSP request names an issuer we do not sign
	// for; the answer is the unauthorized OCSP response (RFC 6960,
	// Section 2.3).
	ErrOCSPUnauthorized = errors.New("ca: OCSP request for an issuer we do not serve")
)

// Revocation timing.
const (
	// DefaultCRLRefresh bounds how long a cached CRL is served before the
	// store is read again, and so how late a change made by another replica
	// sharing the store shows in this replica's CRL.
	DefaultCRLRefresh = time.Minute
	// maxCRLRefresh keeps the refresh far below the CRL validity.
	maxCRLRefresh = time.Hour
	// crlResign is the age at which a CRL is signed again even if nothing
	// changed: half its validity, well before its nextUpdate.
	crlResign = crlValidity / 2
	// ocspValidity is the nextUpdate of an OCSP response after its
	// thisUpdate.
	ocspValidity = time.Hour
)

// Issuers finds the signing certificate and key of an issuing CA by store
// ID; *Authority implements it (Authority.Issuer).
type Issuers interface {
	Issuer(id string) (cert *x509.Certificate, key crypto.Signer, ok bool)
}

// RevocationStore is what CRLs and OCSP read: certificate records for their
// status and CA records to find the issuer an OCSP request names.
type RevocationStore interface {
	GetCertificate(ctx context.Context, serial string) (*store.Certificate, error)
	ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error)
	ListCAs(ctx context.Context) ([]*store.CA, error)
}

// RevocationConfig configures NewRevocation.
type RevocationConfig struct {
	// Issuers signs: the CRL of CA id and OCSP answers for its certificates
	// are signed by Issuers.Issuer(id), so that every CA we hold a key of
	// (the active intermediate and, after a rotation, the retired ones)
	// has its own.
	Issuers Issuers
	Store   RevocationStore
	// Refresh is how long a cached CRL is served before the store is read
	// again; default DefaultCRLRefresh, at most an hour. A change made in
	// this process (Changed) shows at once; one made by another replica
	// sharing the store within Refresh.
	Refresh time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Revocation publishes certificate status: a signed CRL per issuing CA,
// cached, and OCSP answers read from the store on every request. It is
// safe for concurrent use.
type Revocation struct {
	issuers Issuers
	st      RevocationStore
	refresh time.Duration
	now     func() time.Time

	// gen counts Changed calls; a cached CRL made under an older
	// generation is rebuilt.
	gen atomic.Uint64

	mu   sync.Mutex
	crls map[string]*crlSlot // by CA ID
}

// crlSlot holds the cached CRL of one CA; its mutex makes concurrent
// requests wait for one regeneration instead of each signing.
type crlSlot struct {
	mu  sync.Mutex
	crl *CRL
}

// CRL is a signed certificate revocation list (RFC 5280, Section 5) with
// what an HTTP answer needs.
type CRL struct {
	DER        []byte
	Number     *big.Int
	ThisUpdate time.Time
	NextUpdate time.Time
	// ETag is a strong entity tag (quoted) of DER.
	ETag string

	issuer  *x509.Certificate
	digest  [sha256.Size]byte // of the entries
	checked time.Time         // when the store was last read for it
	gen     uint64
}

// NewRevocation checks cfg and returns the publisher.
func NewRevocation(cfg RevocationConfig) (*Revocation, error) {
	if cfg.Issuers == nil {
		return nil, errors.New("ca: revocation: nil Issuers")
	}
	if cfg.Store == nil {
		return nil, errors.New("ca: revocation: nil Store")
	}
	switch {
	case cfg.Refresh == 0:
		cfg.Refresh = DefaultCRLRefresh
	case cfg.Refresh < time.Second || cfg.Refresh > maxCRLRefresh:
		return nil, fmt.Errorf("ca: revocation: CRL refresh %v, want between 1s and %v", cfg.Refresh, maxCRLRefresh)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Revocation{issuers: cfg.Issuers, st: cfg.Store, refresh: cfg.Refresh, now: cfg.Now, crls: map[string]*crlSlot{}}, nil
}

// Refresh returns how long a CRL may be served from the cache; HTTP
// answers use it as their max-age.
func (r *Revocation) Refresh() time.Duration { return r.refresh }

// Changed tells the publisher that a certificate's status changed in this
// process (revoked, put on hold, hold lifted): the next CRL request reads
// the store again.
func (r *Revocation) Changed() { r.gen.Add(1) }

// CRL returns the current CRL of the issuing CA caID, or an error wrapping
// ErrUnknownCA. It lists every certificate of the CA that is revoked or on
// hold (reason certificateHold) until a validity period of the CRL after
// the certificate expired (RFC 5280, Section 3.3). The cached CRL is
// served while no change happened in this process and it was checked
// against the store less than Refresh ago; when the store shows no change
// it is kept (same number, same ETag) until half its validity has passed.
func (r *Revocation) CRL(ctx context.Context, caID string) (*CRL, error) {
	cert, key, ok := r.issuers.Issuer(caID)
	if !ok {
		return nil, fmt.Errorf("ca: crl %q: %w", caID, ErrUnknownCA)
	}
	slot := r.slot(caID)
	slot.mu.Lock()
	defer slot.mu.Unlock()

	now := r.now().UTC()
	gen := r.gen.Load()
	old := slot.crl
	if old != nil && !old.issuer.Equal(cert) {
		old = nil
	}
	fresh := old != nil && now.Before(old.ThisUpdate.Add(crlResign)) && !now.Before(old.ThisUpdate)
	if fresh && old.gen == gen && now.Sub(old.checked) < r.refresh {
		return old, nil
	}
	entries, digest, err := crlEntries(ctx, r.st, caID, now)
	if err != nil {
		return nil, err
	}
	if fresh && old.digest == digest {
		c := *old
		c.checked, c.gen = now, gen
		slot.crl = &c
		return &c, nil
	}
	c, err := signCRL(cert, key, entries, now)
	if err != nil {
		return nil, err
	}
	c.digest, c.checked, c.gen = digest, now, gen
	slot.crl = c
	return c, nil
}

func (r *Revocation) slot(caID string) *crlSlot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.crls[caID]
	if s == nil {
		s = &crlSlot{}
		r.crls[caID] = s
	}
	return s
}

// crlEntries lists the revoked and held certificates of caID that belong
// on a CRL issued at now, sorted by serial, and a digest of them.
func crlEntries(ctx context.Context, st interface {
	ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error)
}, caID string, now time.Time,
) ([]x509.RevocationListEntry, [sha256.Size]byte, error) {
	// One pass over the CA's certificates (a status filter would cost a
	// pass per status).
	certs, err := st.ListCertificates(ctx, store.CertFilter{CAID: caID})
	if err != nil {
		return nil, [sha256.Size]byte{}, fmt.Errorf("ca: crl %s: %w", caID, err)
	}
	var entries []x509.RevocationListEntry
	for _, c := range certs {
		if c.CAID != caID || c.Status != store.CertRevoked && c.Status != store.CertOnHold {
			continue
		}
		// Keep the entry until one CRL validity after expiry, so that
		// every CRL a relying party may use while the certificate is valid
		// lists it (RFC 5280, Section 3.3).
		if !c.NotAfter.IsZero() && now.After(c.NotAfter.Add(crlValidity)) {
			continue
		}
		serial, err := ParseSerial(c.Serial)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("ca: crl %s: stored serial %q: %w", caID, c.Serial, err)
		}
		reason := c.RevocationReason
		if c.Status == store.CertOnHold {
			reason = reasonCertificateHold
		}
		at := c.RevokedAt
		if at.IsZero() {
			at = c.IssuedAt
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: at.UTC().Truncate(time.Second), ReasonCode: reason})
	}
	slices.SortFunc(entries, func(x, y x509.RevocationListEntry) int { return x.SerialNumber.Cmp(y.SerialNumber) })
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%x %d %d\n", e.SerialNumber, e.ReasonCode, e.RevocationTime.Unix())
	}
	var digest [sha256.Size]byte
	h.Sum(digest[:0])
	return entries, digest, nil
}

// signCRL signs a CRL of entries issued at now by cert with key. The CRL
// number is the signing time in nanoseconds, so it grows monotonically
// across restarts and replicas whose clocks agree.
func signCRL(cert *x509.Certificate, key crypto.Signer, entries []x509.RevocationListEntry, now time.Time) (*CRL, error) {
	alg, err := signatureAlgorithm(key)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.RevocationList{
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now,
		NextUpdate:                now.Add(crlValidity),
		RevokedCertificateEntries: entries,
		SignatureAlgorithm:        alg,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, cert, key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign crl: %w", err)
	}
	sum := sha256.Sum256(der)
	return &CRL{
		DER:        der,
		Number:     tmpl.Number,
		ThisUpdate: now,
		NextUpdate: tmpl.NextUpdate,
		ETag:       `"` + hex.EncodeToString(sum[:16]) + `"`,
		issuer:     cert,
	}, nil
}

// sameKeyHash reports whether hash is the hash h of cert's public key bits
// (the BIT STRING contents of its SubjectPublicKeyInfo), as in an OCSP
// CertID (RFC 6960, Section 4.1.1).
func sameKeyHash(h crypto.Hash, cert *x509.Certificate, hash []byte) bool {
	bits, err := publicKeyBits(cert)
	if err != nil {
		return false
	}
	d := h.New()
	d.Write(bits)
	return bytes.Equal(d.Sum(nil), hash)
}
