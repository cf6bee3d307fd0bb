package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/scepca/scepca/store"
)

// Rotating the intermediate (docs/operations.md, "Rotating the
// intermediate") moves our own INTERMEDIATE records, and the RA records
// they issued, through a small state machine kept in store.CA.State:
//
//	Rotate:             (none) → NEXT       served by GetNextCACert, issues nothing
//	Activate(next):     NEXT   → ACTIVE     the issuing CA from now on
//	                    ACTIVE → RETIRED    the one it replaces: trusted, signs its CRL/OCSP, issues nothing
//	DeleteIntermediate: NEXT   → (deleted)  the rotation is abandoned
//	                    RETIRED→ (deleted)  its certificates stop being trusted
//
// Every operation writes its records in an order that a crash between two
// writes cannot turn into a broken CA: the record that commits the change
// is written last (Rotate: the intermediate after its RA; Activate: the
// new intermediate ACTIVE before the old one is marked RETIRED, and load
// treats an older ACTIVE intermediate as retired).

// DefaultReloadInterval is how often Run rereads the CA records, and so the
// bound on how long a replica sharing the store with another (etcd) keeps
// issuing from an intermediate the other one replaced.
const DefaultReloadInterval = 30 * time.Second

// Audit events of the CA lifecycle.
const (
	EventRotate   = "certificate_authority.rotate"
	EventActivate = "certificate_authority.activate"
	EventDelete   = "certificate_authority.delete"
	// EventInit, EventExportRootKey and EventRemoveRootKey: the hierarchy
	// was created; the root key was exported, or removed from the store.
	EventInit          = "certificate_authority.init"
	EventExportRootKey = "certificate_authority.export_root_key"
	EventRemoveRootKey = "certificate_authority.remove_root_key"
)

// RotateOptions configure Rotate.
type RotateOptions struct {
	// KeyType of the new intermediate, KeyTypeRSA or KeyTypeECDSA; empty
	// keeps the active intermediate's. An ECDSA intermediate gets a new RSA
	// RA certificate.
	KeyType string
	// RootKeyPEM is the root private key (PEM: PKCS #8 "PRIVATE KEY" as
	// ExportRootKey writes it, or "RSA PRIVATE KEY" / "EC PRIVATE KEY"),
	// needed once the key was removed from the store (RemoveRootKey). It is
	// used for this signature only and never stored.
	RootKeyPEM []byte
	// Actor names who asked, for the audit log (e.g. "api" or "cli").
	Actor string
}

// Rotate creates the successor of the active intermediate: a new key of
// opts.KeyType (default: the active one's), an intermediate certificate
// signed by the root with the next generation name ("<Org> Intermediate
// Authority G2", …) and, for ECDSA, a new RSA RA certificate. They are
// stored in state NEXT: GetNextCACert serves them while nothing else
// changes. Rotate fails with an error wrapping ErrLifecycle when a
// successor is already staged, ErrRootKeyRemoved when the root key is
// offline and opts.RootKeyPEM is empty, and ErrBadRootKey when
// opts.RootKeyPEM is not the root's key. It returns the new intermediate's
// record.
func (a *Authority) Rotate(ctx context.Context, opts RotateOptions) (*store.CA, error) {
	keyType := opts.KeyType
	switch keyType {
	case "", KeyTypeRSA, KeyTypeECDSA:
	default:
		return nil, fmt.Errorf("ca: rotate: %w: key type %q, want %q or %q", ErrBadRequest, keyType, KeyTypeRSA, KeyTypeECDSA)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cas, err := a.st.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: rotate: %w", err)
	}
	s, err := a.reloadLocked(ctx, cas)
	if err != nil {
		return nil, err
	}
	if s.next != nil {
		return nil, fmt.Errorf("ca: rotate: %w: intermediate %s is already staged as the next CA; activate or delete it first", ErrLifecycle, s.nextID)
	}
	if keyType == "" {
		keyType = KeyTypeRSA
		if _, ok := s.interKey.Public().(*ecdsa.PublicKey); ok {
			keyType = KeyTypeECDSA
		}
	}
	rootKey, keySource, err := a.rootKey(ctx, s, opts.RootKeyPEM)
	if err != nil {
		return nil, err
	}

	var interKey crypto.Signer
	var raKey crypto.Signer
	if keyType == KeyTypeECDSA {
		if interKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("ca: rotate: generate intermediate key: %w", err)
		}
		if raKey, err = a.cfg.rsaKey(); err != nil {
			return nil, fmt.Errorf("ca: rotate: generate RA key: %w", err)
		}
	} else if interKey, err = a.cfg.rsaKey(); err != nil {
		return nil, fmt.Errorf("ca: rotate: generate intermediate key: %w", err)
	}

	now := a.cfg.Now()
	nb := now.UTC().Add(-clockSkew).Truncate(time.Second)
	interName, raName := successorNames(cas, s.inter, a.cfg.Org)
	inter, err := issueIntermediate(interName, interKey.Public(), raKey == nil, s.root, rootKey, nb)
	if err != nil {
		return nil, err
	}
	interRec, err := newRecord(a.kek, store.RoleIntermediate, inter, interKey, now)
	if err != nil {
		return nil, err
	}
	interRec.Active, interRec.State = false, store.CAStateNext
	raID := ""
	if raKey != nil {
		ra, err := issueRA(raName, raKey.Public(), inter, interKey, nb)
		if err != nil {
			return nil, err
		}
		raRec, err := newRecord(a.kek, store.RoleRA, ra, raKey, now)
		if err != nil {
			return nil, err
		}
		raRec.Active, raRec.State = false, store.CAStateNext
		if err := a.st.CreateCA(ctx, raRec); err != nil {
			return nil, fmt.Errorf("ca: rotate: store RA: %w", err)
		}
		raID = raRec.ID
	}
	if err := a.st.CreateCA(ctx, interRec); err != nil { // the commit point
		return nil, fmt.Errorf("ca: rotate: store intermediate: %w", err)
	}
	a.cfg.Logger.InfoContext(ctx, EventRotate, "target", interRec.ID, "ra_id", raID, "replaces", s.interID,
		"subject", interRec.Subject, "key_type", keyType, "not_after", inter.NotAfter, "root_key", keySource,
		"actor", opts.Actor, "outcome", "success")
	if _, err := a.reloadLocked(ctx, nil); err != nil {
		return nil, err
	}
	return interRec, nil
}

// rootKey returns the root's private key: the one supplied as PEM (checked
// against the root certificate), else the one sealed in the store.
func (a *Authority) rootKey(ctx context.Context, s *snapshot, supplied []byte) (crypto.Signer, string, error) {
	if len(supplied) > 0 {
		k, err := parseKeyPEM(supplied)
		if err != nil {
			return nil, "", fmt.Errorf("ca: rotate: %w: %v", ErrBadRootKey, err)
		}
		pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(s.root.PublicKey) {
			return nil, "", fmt.Errorf("ca: rotate: %w: it does not belong to the root certificate %q", ErrBadRootKey, s.root.Subject.CommonName)
		}
		return k, "supplied", nil
	}
	rec, err := a.st.GetCA(ctx, s.rootID)
	if err != nil {
		return nil, "", fmt.Errorf("ca: rotate: root: %w", err)
	}
	if len(rec.KeyCiphertext) == 0 {
		return nil, "", fmt.Errorf("ca: rotate: root %s: %w; supply the exported root key for this operation", rec.ID, ErrRootKeyRemoved)
	}
	k, err := openKey(a.kek, rec, s.root)
	if err != nil {
		return nil, "", err
	}
	return k, "store", nil
}

// parseKeyPEM parses one PEM private key: PKCS #8, PKCS #1 or SEC 1.
func parseKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	defer clear(block.Bytes)
	var k any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a PEM %q block, want PRIVATE KEY (PKCS #8)", block.Type)
	}
	if err != nil {
		return nil, errors.New("the PEM key does not parse")
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T key cannot sign", k)
	}
	return signer, nil
}

// generation matches the " G<n>" suffix of a rotated intermediate's name.
var generation = regexp.MustCompile(` G([0-9]+)$`)

// successorNames returns the subjects of the next intermediate and RA:
// "<Org> Intermediate Authority G<n>" and "<Org> SCEP RA G<n>", n one more
// than the highest generation among our intermediates (the first is G1).
// Distinct names keep each generation's CRL issuer and OCSP issuer name
// hash apart.
func successorNames(cas []*store.CA, cur *x509.Certificate, defaultOrg string) (inter, ra pkix.Name) {
	gen := 1
	for _, rec := range cas {
		if rec == nil || rec.Role != store.RoleIntermediate {
			continue
		}
		c, err := x509.ParseCertificate(rec.CertDER)
		if err != nil {
			continue
		}
		g := 1
		if m := generation.FindStringSubmatch(c.Subject.CommonName); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil {
				g = n
			}
		}
		gen = max(gen, g)
	}
	org := defaultOrg
	if len(cur.Subject.Organization) > 0 && cur.Subject.Organization[0] != "" {
		org = cur.Subject.Organization[0]
	}
	suffix := " Intermediate Authority G" + strconv.Itoa(gen+1)
	cnOrg := org
	for utf8.RuneCountInString(cnOrg+suffix) > 64 { // ub-common-name, RFC 5280 Appendix A.1
		r := []rune(cnOrg)
		cnOrg = string(r[:len(r)-1])
	}
	inter = pkix.Name{CommonName: cnOrg + suffix, Organization: []string{org}}
	ra = pkix.Name{CommonName: cnOrg + " SCEP RA G" + strconv.Itoa(gen+1), Organization: []string{org}}
	return inter, ra
}

// Activate makes the staged successor id the issuing CA: its RA (if any)
// and then it become ACTIVE, and the intermediate it replaces, with its
// RA, becomes RETIRED — still trusted and still signing revocation for the
// certificates it issued, but issuing nothing. The change applies at once
// in this process; other replicas pick it up within the reload interval.
// Activate fails with an error wrapping store.ErrNotFound for an unknown
// id and ErrLifecycle when id is not a staged successor. It returns the
// activated record.
func (a *Authority) Activate(ctx context.Context, id string, actor string) (*store.CA, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cas, err := a.st.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: activate: %w", err)
	}
	s, err := a.reloadLocked(ctx, cas)
	if err != nil {
		return nil, err
	}
	rec := findCA(cas, id)
	switch {
	case rec == nil:
		return nil, fmt.Errorf("ca: activate %s: %w", id, store.ErrNotFound)
	case rec.Role != store.RoleIntermediate || len(rec.KeyCiphertext) == 0:
		return nil, fmt.Errorf("ca: activate %s: %w: only a staged intermediate of ours can be activated, not a %s", id, ErrLifecycle, rec.Role)
	case rec.Lifecycle() != store.CAStateNext || id != s.nextID:
		return nil, fmt.Errorf("ca: activate %s: %w: it is %s, not the staged next CA", id, ErrLifecycle, rec.Lifecycle())
	}

	// The records as they will be, checked by loading them before any write.
	var writes, retire []*store.CA
	after := make([]*store.CA, 0, len(cas))
	for _, r := range cas {
		u := *r
		switch {
		case u.ID == id:
			u.Active, u.State = true, store.CAStateActive
			writes = append(writes, &u)
		case u.Role == store.RoleRA && u.Lifecycle() == store.CAStateNext && s.nextRA != nil && string(u.CertDER) == string(s.nextRA.Raw):
			u.Active, u.State = true, store.CAStateActive
			writes = append([]*store.CA{&u}, writes...) // before its intermediate
		case (u.Role == store.RoleIntermediate || u.Role == store.RoleRA) && u.Lifecycle() == store.CAStateActive:
			u.Active, u.State = false, store.CAStateRetired
			retire = append(retire, &u)
		}
		after = append(after, &u)
	}
	ns, err := a.load(after)
	if err != nil {
		return nil, fmt.Errorf("ca: activate %s: %w", id, err)
	}
	if ns.interID != id {
		return nil, fmt.Errorf("ca: activate %s: %w: it would not become the issuing CA", id, ErrLifecycle)
	}
	var retired []string
	for _, u := range append(writes, retire...) {
		if err := a.st.UpdateCA(ctx, u); err != nil {
			return nil, fmt.Errorf("ca: activate %s: update %s %s: %w", id, u.Role, u.ID, err)
		}
		if u.State == store.CAStateRetired {
			retired = append(retired, u.ID)
		}
	}
	a.cfg.Logger.InfoContext(ctx, EventActivate, "target", id, "subject", rec.Subject, "retired", retired,
		"actor", actor, "outcome", "success")
	if _, err := a.reloadLocked(ctx, nil); err != nil {
		return nil, err
	}
	return writes[len(writes)-1], nil
}

// DeleteIntermediate deletes one of our intermediates, with the RA
// certificates it issued: a staged successor (abandoning the rotation) or
// a retired one (its certificates stop being trusted, and their CRL and
// OCSP answers stop). A retired intermediate that issued certificates
// still valid and not revoked is refused unless force is set. The active
// intermediate, the root and RAs on their own are refused with
// ErrLifecycle; an unknown id is store.ErrNotFound.
func (a *Authority) DeleteIntermediate(ctx context.Context, id string, force bool, actor string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cas, err := a.st.ListCAs(ctx)
	if err != nil {
		return fmt.Errorf("ca: delete: %w", err)
	}
	s, err := a.reloadLocked(ctx, cas)
	if err != nil {
		return err
	}
	rec := findCA(cas, id)
	if rec == nil {
		return fmt.Errorf("ca: delete %s: %w", id, store.ErrNotFound)
	}
	state := rec.Lifecycle()
	switch {
	case rec.Role != store.RoleIntermediate:
		return fmt.Errorf("ca: delete %s: %w: a %s record cannot be deleted", id, ErrLifecycle, rec.Role)
	case id == s.interID || state == store.CAStateActive:
		return fmt.Errorf("ca: delete %s: %w: it is the active intermediate; rotate and activate its successor first", id, ErrLifecycle)
	}
	cert, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		return fmt.Errorf("ca: delete %s: %w", id, err)
	}
	if state == store.CAStateRetired && !force {
		n, err := a.validCertificates(ctx, id)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("ca: delete %s: %w: %d certificates it issued are still valid; they stop verifying once it is gone (force to delete anyway)", id, ErrLifecycle, n)
		}
	}
	if err := a.st.DeleteCA(ctx, id); err != nil {
		return fmt.Errorf("ca: delete %s: %w", id, err)
	}
	var ras []string
	for _, r := range cas {
		if r.Role != store.RoleRA {
			continue
		}
		if c, err := x509.ParseCertificate(r.CertDER); err == nil && issuedBy(c, cert) {
			if err := a.st.DeleteCA(ctx, r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("ca: delete %s: RA %s: %w", id, r.ID, err)
			}
			ras = append(ras, r.ID)
		}
	}
	a.cfg.Logger.InfoContext(ctx, EventDelete, "target", id, "subject", rec.Subject, "state", state, "ra_ids", ras,
		"force", force, "actor", actor, "outcome", "success")
	_, err = a.reloadLocked(ctx, nil)
	return err
}

// validCertificates counts the certificates caID issued that are not
// revoked and not expired.
func (a *Authority) validCertificates(ctx context.Context, caID string) (int, error) {
	now := a.cfg.Now()
	n := 0
	for _, status := range []string{store.CertIssued, store.CertOnHold} {
		certs, err := a.st.ListCertificates(ctx, store.CertFilter{CAID: caID, Status: status})
		if err != nil {
			return 0, fmt.Errorf("ca: delete %s: %w", caID, err)
		}
		for _, c := range certs {
			if now.Before(c.NotAfter) {
				n++
			}
		}
	}
	return n, nil
}

func findCA(cas []*store.CA, id string) *store.CA {
	for _, r := range cas {
		if r != nil && r.ID == id {
			return r
		}
	}
	return nil
}

// Reload rereads the CA records and, when they changed, swaps in a new
// snapshot. Requests already running finish with the snapshot they
// started with. On error the current snapshot stays.
func (a *Authority) Reload(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err := a.reloadLocked(ctx, nil)
	return err
}

// reloadLocked builds a snapshot from cas (nil: read them) unless they are
// the ones the current snapshot was built from, installs it and returns
// it. a.mu is held.
func (a *Authority) reloadLocked(ctx context.Context, cas []*store.CA) (*snapshot, error) {
	if cas == nil {
		var err error
		if cas, err = a.st.ListCAs(ctx); err != nil {
			return nil, fmt.Errorf("ca: reload: %w", err)
		}
	}
	cur := a.cur.Load()
	if v := recordsVersion(cas); v == cur.version {
		return cur, nil
	}
	s, err := a.load(cas)
	if err != nil {
		return nil, fmt.Errorf("ca: reload: %w", err)
	}
	a.cur.Store(s)
	if s.interID != cur.interID || s.nextID != cur.nextID {
		a.cfg.Logger.InfoContext(ctx, "ca reloaded", attrCAID, s.interID, "next_id", s.nextID, "previous_ca_id", cur.interID)
	}
	return s, nil
}

// Run rereads the CA records every cfg.ReloadInterval until ctx ends, so
// that a rotation step taken on another replica applies here within that
// interval. It returns nil when ctx ends; a failed reload is logged and
// the current snapshot kept.
func (a *Authority) Run(ctx context.Context) error {
	t := time.NewTicker(a.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := a.Reload(ctx); err != nil && ctx.Err() == nil {
				a.cfg.Logger.WarnContext(ctx, "ca reload failed, keeping the loaded CA", "error", err)
			}
		}
	}
}
