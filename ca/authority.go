package ca

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/scepca/scepca/store"
)

// Stores is the part of the storage contract ca uses.
type Stores interface {
	store.CAStore
	store.CertStore
}

// Audit attribute keys.
const (
	attrCAID          = "ca_id"
	attrSerial        = "serial"
	attrTransactionID = "transaction_id"
	attrIntegrationID = "integration_id"
)

// Authority is the loaded CA: the active intermediate and its key, the root
// it chains to and, for an ECDSA intermediate, the RSA RA. It is immutable
// after Init or Open and safe for concurrent use.
type Authority struct {
	cfg Config
	st  Stores
	kek *KEK

	rootID string
	root   *x509.Certificate

	interID  string
	inter    *x509.Certificate
	interKey crypto.Signer
	sigAlg   x509.SignatureAlgorithm

	ra           *x509.Certificate // nil: the intermediate is its own RA
	recipient    *x509.Certificate
	recipientKey *rsa.PrivateKey

	crlURL, ocspURL string

	// lintKey and lintIssuer sign throwaway copies of each template before
	// the real key is used (Prepare).
	lintKey    *ecdsa.PrivateKey
	lintIssuer *x509.Certificate
}

// Init creates the CA hierarchy and stores it with each private key sealed
// under kek (PKCS #8 DER, AAD = the CA record ID): a self-signed root (20
// years, path length 1, keyCertSign|cRLSign), an intermediate (10 years,
// path length 0) and, when cfg.KeyType is "ecdsa", an RSA-2048 RA
// certificate issued by the intermediate. The intermediate is written last:
// until it exists the store counts as not initialised.
//
// Init fails with an error wrapping store.ErrExists when an active
// intermediate with a key is already stored. It is not atomic across
// replicas: with several replicas on one etcd, initialise once (scepca
// init, or OpenOrInit on one replica) before starting the others.
func Init(ctx context.Context, st Stores, kek *KEK, cfg Config) (*Authority, error) {
	if err := checkArgs(st, kek, cfg); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cas, err := st.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: init: %w", err)
	}
	if rec := activeIntermediate(cas); rec != nil {
		return nil, fmt.Errorf("ca: init: intermediate %s is already active: %w", rec.ID, store.ErrExists)
	}

	now := cfg.Now()
	h, err := newHierarchy(cfg, now)
	if err != nil {
		return nil, err
	}
	rootRec, err := newRecord(kek, store.RoleRoot, h.root, h.rootKey, now)
	if err != nil {
		return nil, err
	}
	interRec, err := newRecord(kek, store.RoleIntermediate, h.inter, h.interKey, now)
	if err != nil {
		return nil, err
	}
	recs := []*store.CA{rootRec}
	raID := ""
	if h.ra != nil {
		raRec, err := newRecord(kek, store.RoleRA, h.ra, h.raKey, now)
		if err != nil {
			return nil, err
		}
		raID = raRec.ID
		recs = append(recs, raRec)
	}
	recs = append(recs, interRec) // last: the commit point
	for _, rec := range recs {
		if err := st.CreateCA(ctx, rec); err != nil {
			return nil, fmt.Errorf("ca: init: store %s %s: %w", rec.Role, rec.ID, err)
		}
	}

	a, err := newAuthority(cfg, st, kek, rootRec.ID, h.root, interRec.ID, h.inter, h.interKey, h.ra, h.raKey)
	if err != nil {
		return nil, err
	}
	cfg.Logger.InfoContext(ctx, "ca initialized",
		"root_id", rootRec.ID, attrCAID, interRec.ID, "ra_id", raID, "key_type", cfg.KeyType,
		"intermediate_not_after", h.inter.NotAfter)
	return a, nil
}

// Open loads the active intermediate (the newest active INTERMEDIATE record
// that has a key), the root that signed it and, if the intermediate issued
// one, the newest active RA. It returns an error wrapping ErrNotInitialized
// when there is no such intermediate, and one wrapping ErrWrongKEK when kek
// does not open the stored keys. The recipient must pass CheckRecipient.
// cfg.KeyType is ignored: the store decides.
func Open(ctx context.Context, st Stores, kek *KEK, cfg Config) (*Authority, error) {
	if err := checkArgs(st, kek, cfg); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cas, err := st.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: open: %w", err)
	}
	interRec := activeIntermediate(cas)
	if interRec == nil {
		return nil, fmt.Errorf("ca: open: no active intermediate: %w", ErrNotInitialized)
	}
	inter, err := x509.ParseCertificate(interRec.CertDER)
	if err != nil {
		return nil, fmt.Errorf("ca: open: intermediate %s: %w", interRec.ID, err)
	}
	interKey, err := openKey(kek, interRec, inter)
	if err != nil {
		return nil, err
	}

	var rootRec *store.CA
	var root *x509.Certificate
	for _, rec := range newestFirst(cas, store.RoleRoot) {
		c, err := x509.ParseCertificate(rec.CertDER)
		if err != nil || !issuedBy(inter, c) {
			continue
		}
		if rootRec == nil || rec.Active && !rootRec.Active {
			rootRec, root = rec, c
		}
	}
	if rootRec == nil {
		return nil, fmt.Errorf("ca: open: no root certificate for intermediate %s", interRec.ID)
	}

	var ra *x509.Certificate
	var raKey *rsa.PrivateKey
	for _, rec := range newestFirst(cas, store.RoleRA) {
		if !rec.Active || len(rec.KeyCiphertext) == 0 {
			continue
		}
		c, err := x509.ParseCertificate(rec.CertDER)
		if err != nil || !issuedBy(c, inter) {
			continue
		}
		k, err := openKey(kek, rec, c)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("ca: open: RA %s has a %T key, want RSA", rec.ID, k)
		}
		ra, raKey = c, rk
		break
	}
	return newAuthority(cfg, st, kek, rootRec.ID, root, interRec.ID, inter, interKey, ra, raKey)
}

// OpenOrInit opens the CA in st, or initialises it when the store holds
// none; created reports which. When another process initialises first, it
// opens that CA instead.
func OpenOrInit(ctx context.Context, st Stores, kek *KEK, cfg Config) (a *Authority, created bool, err error) {
	a, err = Open(ctx, st, kek, cfg)
	if !errors.Is(err, ErrNotInitialized) {
		return a, false, err
	}
	a, err = Init(ctx, st, kek, cfg)
	if errors.Is(err, store.ErrExists) {
		a, err = Open(ctx, st, kek, cfg)
		return a, false, err
	}
	return a, err == nil, err
}

func checkArgs(st Stores, kek *KEK, cfg Config) error {
	if st == nil {
		return errors.New("ca: nil store")
	}
	if kek == nil {
		return errors.New("ca: nil KEK")
	}
	return cfg.Validate()
}

func newAuthority(cfg Config, st Stores, kek *KEK, rootID string, root *x509.Certificate,
	interID string, inter *x509.Certificate, interKey crypto.Signer,
	ra *x509.Certificate, raKey *rsa.PrivateKey,
) (*Authority, error) {
	alg, err := signatureAlgorithm(interKey)
	if err != nil {
		return nil, err
	}
	a := &Authority{
		cfg: cfg, st: st, kek: kek,
		rootID: rootID, root: root,
		interID: interID, inter: inter, interKey: interKey, sigAlg: alg,
		ra: ra, recipient: ra, recipientKey: raKey,
	}
	if ra == nil {
		rk, ok := interKey.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("ca: intermediate %s has a %T key and there is no active RA", interID, interKey)
		}
		a.recipient, a.recipientKey = inter, rk
	}
	if err := CheckRecipient(a.recipient); err != nil {
		return nil, err
	}
	if cfg.PublicURL != "" {
		a.crlURL = cfg.PublicURL + "/crl/" + interID + ".crl"
		a.ocspURL = cfg.PublicURL + "/ocsp"
	}
	a.lintKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: lint key: %w", err)
	}
	a.lintIssuer = &x509.Certificate{
		RawSubject:   inter.RawSubject,
		SubjectKeyId: inter.SubjectKeyId,
		PublicKey:    a.lintKey.Public(),
	}
	return a, nil
}

// activeIntermediate returns the newest active intermediate that has a key
// (uploaded intermediates, trusted only for verification, have none).
func activeIntermediate(cas []*store.CA) *store.CA {
	for _, rec := range newestFirst(cas, store.RoleIntermediate) {
		if rec.Active && len(rec.KeyCiphertext) > 0 {
			return rec
		}
	}
	return nil
}

// newestFirst returns the records of role, newest first (ties by ID), so
// that every replica picks the same one.
func newestFirst(cas []*store.CA, role string) []*store.CA {
	var out []*store.CA
	for _, rec := range cas {
		if rec != nil && rec.Role == role {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(x, y *store.CA) int {
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(y.ID, x.ID)
	})
	return out
}

// issuedBy reports whether parent's name and key issued c.
func issuedBy(c, parent *x509.Certificate) bool {
	return c != nil && parent != nil && bytes.Equal(c.RawIssuer, parent.RawSubject) && c.CheckSignatureFrom(parent) == nil
}

// newRecord seals key under kek with the new record's ID as AAD.
func newRecord(kek *KEK, role string, cert *x509.Certificate, key crypto.Signer, now time.Time) (*store.CA, error) {
	id, err := newID()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: marshal %s key: %w", role, err)
	}
	defer clear(der)
	ct, err := kek.Seal(der, []byte(id))
	if err != nil {
		return nil, err
	}
	return &store.CA{
		ID:            id,
		Role:          role,
		Subject:       cert.Subject.String(),
		CertDER:       cert.Raw,
		KeyCiphertext: ct,
		Active:        true,
		CreatedAt:     now.UTC(),
	}, nil
}

// openKey unseals rec's key and checks that it belongs to cert.
func openKey(kek *KEK, rec *store.CA, cert *x509.Certificate) (crypto.Signer, error) {
	if len(rec.KeyCiphertext) == 0 {
		return nil, fmt.Errorf("ca: %s %s has no key", rec.Role, rec.ID)
	}
	der, err := kek.Open(rec.KeyCiphertext, []byte(rec.ID))
	if err != nil {
		return nil, fmt.Errorf("ca: open %s %s key: %w", rec.Role, rec.ID, err)
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse %s %s key: %w", rec.Role, rec.ID, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca: %s %s key of type %T is not a signer", rec.Role, rec.ID, k)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("ca: %s %s key does not match its certificate", rec.Role, rec.ID)
	}
	return signer, nil
}

// Root returns the root certificate.
func (a *Authority) Root() *x509.Certificate { return a.root }

// RootID returns the store ID of the root record.
func (a *Authority) RootID() string { return a.rootID }

// Intermediate returns the issuing certificate.
func (a *Authority) Intermediate() *x509.Certificate { return a.inter }

// IntermediateID returns the store ID of the issuing CA; it is the CAID of
// every certificate it issues and names its CRL (/crl/{id}.crl).
func (a *Authority) IntermediateID() string { return a.interID }

// Issuer returns the certificate and key of the issuing CA whose store ID
// is id; ok is false when this authority holds no issuing key under id.
// Revocation (the CRL at /crl/{id}.crl and OCSP responses for the CA's
// certificates) is signed with it. Today that is the active intermediate
// only; CA rotation (issue 7) adds the intermediates it retires.
func (a *Authority) Issuer(id string) (cert *x509.Certificate, key crypto.Signer, ok bool) {
	if id != a.interID {
		return nil, nil, false
	}
	return a.inter, a.interKey, true
}

// RA returns the separate RA certificate, or nil when the intermediate is
// its own RA (an RSA intermediate).
func (a *Authority) RA() *x509.Certificate { return a.ra }

// Recipient returns the certificate and key that receive SCEP envelopes and
// sign CertReps: the RA if there is one, else the intermediate. The key is
// always RSA: SCEP envelopes use RSA key transport (RFC 8894 §2.1.2).
func (a *Authority) Recipient() (*x509.Certificate, *rsa.PrivateKey) {
	return a.recipient, a.recipientKey
}

// Chain returns the RA (if any), the intermediate and the root, in that
// order, as a new slice.
func (a *Authority) Chain() []*x509.Certificate {
	chain := make([]*x509.Certificate, 0, 3)
	if a.ra != nil {
		chain = append(chain, a.ra)
	}
	return append(chain, a.inter, a.root)
}

// CRLURL returns the CRL distribution point put in issued certificates, ""
// without a public URL.
func (a *Authority) CRLURL() string { return a.crlURL }

// OCSPURL returns the OCSP responder URL put in issued certificates, ""
// without a public URL.
func (a *Authority) OCSPURL() string { return a.ocspURL }

// Trusts reports whether cert was issued by our intermediate: its issuer
// name is the intermediate's subject and its signature verifies under the
// intermediate's key. It does not check validity dates or revocation.
func (a *Authority) Trusts(cert *x509.Certificate) bool {
	return issuedBy(cert, a.inter)
}

// CheckRecipient checks that cert can receive SCEP envelopes and sign
// CertReps: an RSA key, and key usage with digitalSignature and
// keyEncipherment (RFC 8894 §2.1.2; a certSign-only CA breaks macOS,
// PROTOCOLS.md §1.3).
func CheckRecipient(cert *x509.Certificate) error {
	if cert == nil {
		return errors.New("ca: recipient: no certificate")
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return fmt.Errorf("ca: recipient %q: %v key, want RSA", cert.Subject.CommonName, cert.PublicKeyAlgorithm)
	}
	const want = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	if cert.KeyUsage&want != want {
		return fmt.Errorf("ca: recipient %q: key usage lacks digitalSignature or keyEncipherment", cert.Subject.CommonName)
	}
	return nil
}
