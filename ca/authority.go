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
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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
// it chains to and, for an ECDSA intermediate, the RSA RA; besides them the
// intermediates it retired (still trusted, still signing revocation for
// their certificates) and a successor staged by Rotate. It is safe for
// concurrent use.
//
// The issuing state is an immutable snapshot behind an atomic pointer.
// Rotate, Activate and DeleteIntermediate replace it at once in this
// process; Reload (run periodically by Run) picks up changes another
// replica made in a shared store. A request keeps the snapshot it started
// with: a Token issues under the snapshot Prepare used.
type Authority struct {
	cfg Config
	st  Stores
	kek *KEK

	// lintKey signs throwaway copies of each template before the real key
	// is used (Prepare).
	lintKey *ecdsa.PrivateKey

	cur atomic.Pointer[snapshot]
	// mu serialises Reload and the lifecycle operations of this process.
	mu sync.Mutex
}

// snapshot is one immutable view of the CA records.
type snapshot struct {
	// version identifies the records the snapshot was built from (see
	// recordsVersion); Reload skips rebuilding when it is unchanged.
	version string

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

	// lintIssuer stands in for the intermediate when linting.
	lintIssuer *x509.Certificate

	// retired are the intermediates this one replaced whose keys we hold,
	// newest first, and retiredRecipients their SCEP recipients.
	retired           []issuingCA
	retiredRecipients []Recipient

	// nextID, next and nextRA are the staged successor (Rotate), if any.
	nextID string
	next   *x509.Certificate
	nextRA *x509.Certificate
}

// issuingCA is an intermediate with its key.
type issuingCA struct {
	id   string
	cert *x509.Certificate
	key  crypto.Signer
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

	a, err := newAuthority(ctx, cfg, st, kek)
	if err != nil {
		return nil, err
	}
	cfg.Logger.InfoContext(ctx, EventInit, "target", interRec.ID, "outcome", "success",
		"root_id", rootRec.ID, "ra_id", raID, "key_type", cfg.KeyType,
		"intermediate_not_after", h.inter.NotAfter)
	return a, nil
}

// Open loads the active intermediate (the newest active INTERMEDIATE record
// that has a key), the root that signed it and, if the intermediate issued
// one, the newest active RA; besides them the retired intermediates whose
// keys the store holds and a staged successor. It returns an error wrapping
// ErrNotInitialized when there is no active intermediate, and one wrapping
// ErrWrongKEK when kek does not open the stored keys. The recipient must
// pass CheckRecipient. cfg.KeyType is ignored: the store decides.
func Open(ctx context.Context, st Stores, kek *KEK, cfg Config) (*Authority, error) {
	if err := checkArgs(st, kek, cfg); err != nil {
		return nil, err
	}
	return newAuthority(ctx, cfg.withDefaults(), st, kek)
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

func newAuthority(ctx context.Context, cfg Config, st Stores, kek *KEK) (*Authority, error) {
	lintKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: lint key: %w", err)
	}
	a := &Authority{cfg: cfg, st: st, kek: kek, lintKey: lintKey}
	cas, err := st.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: open: %w", err)
	}
	s, err := a.load(cas)
	if err != nil {
		return nil, err
	}
	a.cur.Store(s)
	return a, nil
}

// load builds a snapshot from the CA records.
func (a *Authority) load(cas []*store.CA) (*snapshot, error) {
	interRec := activeIntermediate(cas)
	if interRec == nil {
		return nil, fmt.Errorf("ca: open: no active intermediate: %w", ErrNotInitialized)
	}
	inter, err := x509.ParseCertificate(interRec.CertDER)
	if err != nil {
		return nil, fmt.Errorf("ca: open: intermediate %s: %w", interRec.ID, err)
	}
	interKey, err := openKey(a.kek, interRec, inter)
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

	ra, raKey, err := activeRA(a.kek, cas, inter)
	if err != nil {
		return nil, err
	}
	alg, err := signatureAlgorithm(interKey)
	if err != nil {
		return nil, err
	}
	s := &snapshot{
		version: recordsVersion(cas),
		rootID:  rootRec.ID, root: root,
		interID: interRec.ID, inter: inter, interKey: interKey, sigAlg: alg,
		ra: ra, recipient: ra, recipientKey: raKey,
	}
	if ra == nil {
		rk, ok := interKey.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("ca: intermediate %s has a %T key and there is no active RA", interRec.ID, interKey)
		}
		s.recipient, s.recipientKey = inter, rk
	}
	if err := CheckRecipient(s.recipient); err != nil {
		return nil, err
	}
	if a.cfg.PublicURL != "" {
		s.crlURL = a.cfg.PublicURL + "/crl/" + interRec.ID + ".crl"
		s.ocspURL = a.cfg.PublicURL + "/ocsp"
	}
	s.lintIssuer = &x509.Certificate{
		RawSubject:   inter.RawSubject,
		SubjectKeyId: inter.SubjectKeyId,
		PublicKey:    a.lintKey.Public(),
	}

	for _, rec := range newestFirst(cas, store.RoleIntermediate) {
		if rec.ID == interRec.ID || len(rec.KeyCiphertext) == 0 {
			continue
		}
		c, err := x509.ParseCertificate(rec.CertDER)
		if err != nil {
			continue // a record that does not parse serves nothing
		}
		switch rec.Lifecycle() {
		case store.CAStateActive, store.CAStateRetired:
			// An older ACTIVE one is an activation interrupted between
			// its writes: the newest active intermediate has replaced it.
			key, err := openKey(a.kek, rec, c)
			if err != nil {
				return nil, err
			}
			s.retired = append(s.retired, issuingCA{id: rec.ID, cert: c, key: key})
			r, err := retiredRecipient(a.kek, cas, c, key)
			if err != nil {
				return nil, err
			}
			if r.Cert != nil {
				s.retiredRecipients = append(s.retiredRecipients, r)
			}
		case store.CAStateNext:
			if s.next != nil || !issuedBy(c, root) {
				continue
			}
			s.nextID, s.next = rec.ID, c
			for _, r := range newestFirst(cas, store.RoleRA) {
				rc, err := x509.ParseCertificate(r.CertDER)
				if err == nil && r.Lifecycle() == store.CAStateNext && issuedBy(rc, c) {
					s.nextRA = rc
					break
				}
			}
		}
	}
	return s, nil
}

// activeRA returns the newest active RA that inter issued, or nils.
func activeRA(kek *KEK, cas []*store.CA, inter *x509.Certificate) (*x509.Certificate, *rsa.PrivateKey, error) {
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
			return nil, nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("ca: open: RA %s has a %T key, want RSA", rec.ID, k)
		}
		return c, rk, nil
	}
	return nil, nil, nil
}

// retiredRecipient returns the SCEP recipient of a retired intermediate:
// itself when it is an RSA recipient, else the newest RA it issued whose
// key we hold; a zero Recipient when there is none.
func retiredRecipient(kek *KEK, cas []*store.CA, inter *x509.Certificate, key crypto.Signer) (Recipient, error) {
	if rk, ok := key.(*rsa.PrivateKey); ok && CheckRecipient(inter) == nil {
		return Recipient{Cert: inter, Key: rk}, nil
	}
	for _, rec := range newestFirst(cas, store.RoleRA) {
		if len(rec.KeyCiphertext) == 0 || rec.Lifecycle() == store.CAStateNext {
			continue
		}
		c, err := x509.ParseCertificate(rec.CertDER)
		if err != nil || !issuedBy(c, inter) {
			continue
		}
		k, err := openKey(kek, rec, c)
		if err != nil {
			return Recipient{}, err
		}
		if rk, ok := k.(*rsa.PrivateKey); ok && CheckRecipient(c) == nil {
			return Recipient{Cert: c, Key: rk}, nil
		}
	}
	return Recipient{}, nil
}

// recordsVersion summarises what load reads from the records, so that an
// unchanged store does not reopen every key on each Reload.
func recordsVersion(cas []*store.CA) string {
	h := sha256.New()
	for _, rec := range slices.SortedFunc(slices.Values(cas), func(x, y *store.CA) int { return cmp.Compare(x.ID, y.ID) }) {
		if rec == nil || rec.Role == store.RoleUploaded {
			continue
		}
		fmt.Fprintf(h, "%s|%s|%s|%t|%d|%s|", rec.ID, rec.Role, rec.State, rec.Active, rec.CreatedAt.UnixNano(), rec.Subject)
		sum := sha256.Sum256(rec.CertDER)
		h.Write(sum[:])
		sum = sha256.Sum256(rec.KeyCiphertext)
		h.Write(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))
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
	rec := &store.CA{
		ID:            id,
		Role:          role,
		Subject:       cert.Subject.String(),
		CertDER:       cert.Raw,
		KeyCiphertext: ct,
		Active:        true,
		CreatedAt:     now.UTC(),
	}
	if role == store.RoleIntermediate || role == store.RoleRA {
		rec.State = store.CAStateActive
	}
	return rec, nil
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

// snap returns the current snapshot.
func (a *Authority) snap() *snapshot { return a.cur.Load() }

// Root returns the root certificate.
func (a *Authority) Root() *x509.Certificate { return a.snap().root }

// RootID returns the store ID of the root record.
func (a *Authority) RootID() string { return a.snap().rootID }

// Intermediate returns the issuing certificate.
func (a *Authority) Intermediate() *x509.Certificate { return a.snap().inter }

// IntermediateID returns the store ID of the issuing CA; it is the CAID of
// every certificate it issues and names its CRL (/crl/{id}.crl).
func (a *Authority) IntermediateID() string { return a.snap().interID }

// Issuer returns the certificate and key of the issuing CA whose store ID
// is id; ok is false when this authority holds no issuing key under id.
// Revocation (the CRL at /crl/{id}.crl and OCSP responses for the CA's
// certificates) is signed with it. That is the active intermediate and
// each retired one whose key the store still holds, until it expires.
func (a *Authority) Issuer(id string) (cert *x509.Certificate, key crypto.Signer, ok bool) {
	c, ok := a.findIssuer(func(c issuingCA) bool { return c.id == id })
	return c.cert, c.key, ok
}

// findIssuer returns the first issuing CA Issuer serves, the active
// intermediate first, then the unexpired retired ones, that match accepts.
func (a *Authority) findIssuer(match func(issuingCA) bool) (issuingCA, bool) {
	s := a.snap()
	if active := (issuingCA{id: s.interID, cert: s.inter, key: s.interKey}); match(active) {
		return active, true
	}
	now := a.cfg.Now()
	for _, r := range s.retired {
		if now.Before(r.cert.NotAfter) && match(r) {
			return r, true
		}
	}
	return issuingCA{}, false
}

// IssuerID returns the store ID of the issuing CA (the active intermediate
// or a retired one Issuer still serves) whose subject is the DER name
// rawSubject, as a SCEP GetCert or GetCRL request names its issuer.
func (a *Authority) IssuerID(rawSubject []byte) (id string, ok bool) {
	c, ok := a.findIssuer(func(c issuingCA) bool { return bytes.Equal(c.cert.RawSubject, rawSubject) })
	return c.id, ok
}

// RA returns the separate RA certificate, or nil when the intermediate is
// its own RA (an RSA intermediate).
func (a *Authority) RA() *x509.Certificate { return a.snap().ra }

// Recipient returns the certificate and key that receive SCEP envelopes and
// sign CertReps: the RA if there is one, else the intermediate. The key is
// always RSA: SCEP envelopes use RSA key transport (RFC 8894 §2.1.2).
func (a *Authority) Recipient() (*x509.Certificate, *rsa.PrivateKey) {
	s := a.snap()
	return s.recipient, s.recipientKey
}

// Recipient is a certificate and RSA key that receive SCEP envelopes.
type Recipient struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// Recipients returns the current recipient (see Recipient) first, then
// those of the retired intermediates whose certificates are still valid,
// newest first, from one snapshot. A client that fetched GetCACert just
// before a rotation was activated encrypts its request to the previous
// recipient; the SCEP service picks the one the envelope names.
func (a *Authority) Recipients() []Recipient {
	s := a.snap()
	out := []Recipient{{Cert: s.recipient, Key: s.recipientKey}}
	now := a.cfg.Now()
	for _, r := range s.retiredRecipients {
		if now.Before(r.Cert.NotAfter) {
			out = append(out, r)
		}
	}
	return out
}

// Chain returns the RA (if any), the intermediate and the root, in that
// order, as a new slice.
func (a *Authority) Chain() []*x509.Certificate {
	s := a.snap()
	chain := make([]*x509.Certificate, 0, 3)
	if s.ra != nil {
		chain = append(chain, s.ra)
	}
	return append(chain, s.inter, s.root)
}

// Next returns the staged successor (Rotate) for GetNextCACert: the next
// intermediate and, when it has one, its RA, in that order; nil while no
// rotation is pending (RFC 8894 §3.5.2, §4.7).
func (a *Authority) Next() []*x509.Certificate {
	s := a.snap()
	if s.next == nil {
		return nil
	}
	if s.nextRA == nil {
		return []*x509.Certificate{s.next}
	}
	return []*x509.Certificate{s.next, s.nextRA}
}

// CRLURL returns the CRL distribution point put in issued certificates, ""
// without a public URL.
func (a *Authority) CRLURL() string { return a.snap().crlURL }

// OCSPURL returns the OCSP responder URL put in issued certificates, ""
// without a public URL.
func (a *Authority) OCSPURL() string { return a.snap().ocspURL }

// Trusts reports whether cert was issued by our active intermediate or by
// one it retired (whose key we still hold): its issuer name is that
// intermediate's subject and its signature verifies under its key. It does
// not check validity dates or revocation.
func (a *Authority) Trusts(cert *x509.Certificate) bool {
	s := a.snap()
	if issuedBy(cert, s.inter) {
		return true
	}
	for _, r := range s.retired {
		if issuedBy(cert, r.cert) {
			return true
		}
	}
	return false
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
