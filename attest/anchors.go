package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scepca/scepca/store"
)

// ErrUntrusted: a certificate's issuer is neither one of our (active or
// retired) intermediates nor an uploaded one.
var ErrUntrusted = errors.New("attest: untrusted issuer")

// Issuer is a trusted issuer of attestation certificates: our active
// intermediate or one it retired, or an intermediate an administrator
// uploaded.
type Issuer struct {
	ID   string
	Cert *x509.Certificate
	// SHA256 is the uppercase hexadecimal SHA-256 of Cert's DER.
	SHA256 string
	// Uploaded issuers are checked against their CRL distribution point;
	// ours against the store.
	Uploaded bool
}

// CAReader lists CA records.
type CAReader interface {
	ListCAs(ctx context.Context) ([]*store.CA, error)
}

// DefaultAnchorRefresh is how long Anchors trusts its copy of the CA list.
// An upload or delete on this replica applies at once (Invalidate); one
// made on another replica within this time.
const DefaultAnchorRefresh = 30 * time.Second

// maxVerified bounds the cache of certificates whose issuer signature has
// been checked.
const maxVerified = 100_000

// Anchors is the verifier's trust: our intermediates (store role
// INTERMEDIATE), active or retired by a rotation, and uploaded ones (role
// UPLOADED), read from the store and
// kept for DefaultAnchorRefresh. Like Okta, it does not walk chains: a
// certificate is trusted when one of these issued it (PROTOCOLS.md §4.1).
//
// A device presents the same certificate at every sign-in, so Anchors
// remembers which certificates (by SHA-256 of their DER) an issuer's
// signature was checked for: a verify then costs one public-key operation,
// the proof's own.
type Anchors struct {
	st      CAReader
	now     func() time.Time
	refresh time.Duration

	mu        sync.Mutex
	loadedAt  time.Time
	stale     bool
	issuers   []*Issuer
	bySubject map[string][]*Issuer
	verified  map[[sha256.Size]byte]*Issuer
}

// NewAnchors returns the trust anchors in st, reloaded when older than
// refresh (0 means DefaultAnchorRefresh), on the clock now (nil: time.Now).
func NewAnchors(st CAReader, refresh time.Duration, now func() time.Time) (*Anchors, error) {
	if st == nil {
		return nil, errors.New("attest: anchors: nil store")
	}
	if refresh < 0 {
		return nil, fmt.Errorf("attest: anchors: negative refresh %v", refresh)
	}
	if refresh == 0 {
		refresh = DefaultAnchorRefresh
	}
	if now == nil {
		now = time.Now
	}
	return &Anchors{st: st, now: now, refresh: refresh, stale: true}, nil
}

// Invalidate makes the next lookup reload the CA list (after an upload or a
// delete).
func (a *Anchors) Invalidate() {
	a.mu.Lock()
	a.stale = true
	a.mu.Unlock()
}

// Issuers returns the trusted issuers: ours first, then uploaded ones,
// each group newest first.
func (a *Anchors) Issuers(ctx context.Context) ([]*Issuer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.loadLocked(ctx); err != nil {
		return nil, err
	}
	return slices.Clone(a.issuers), nil
}

// Find returns the trusted issuer of cert, or an error wrapping
// ErrUntrusted. The issuer's name must equal cert's issuer name and its key
// must verify cert's signature.
func (a *Anchors) Find(ctx context.Context, cert *x509.Certificate) (*Issuer, error) {
	sum := sha256.Sum256(cert.Raw)
	a.mu.Lock()
	if err := a.loadLocked(ctx); err != nil {
		a.mu.Unlock()
		return nil, err
	}
	if iss, ok := a.verified[sum]; ok {
		a.mu.Unlock()
		return iss, nil
	}
	candidates := a.bySubject[string(cert.RawIssuer)]
	a.mu.Unlock()

	for _, iss := range candidates {
		if cert.CheckSignatureFrom(iss.Cert) != nil {
			continue
		}
		a.mu.Lock()
		if len(a.verified) >= maxVerified {
			clear(a.verified) // crude but bounded; devices re-verify once
		}
		if a.bySubject != nil && slices.Contains(a.bySubject[string(cert.RawIssuer)], iss) {
			a.verified[sum] = iss // not if a reload dropped iss meanwhile
		}
		a.mu.Unlock()
		return iss, nil
	}
	return nil, ErrUntrusted
}

// loadLocked reloads the CA list when stale or old. The verified cache
// survives a reload that finds the same issuers.
func (a *Anchors) loadLocked(ctx context.Context) error {
	now := a.now()
	if !a.stale && now.Sub(a.loadedAt) < a.refresh && !now.Before(a.loadedAt) {
		return nil
	}
	cas, err := a.st.ListCAs(ctx)
	if err != nil {
		return fmt.Errorf("attest: load trust anchors: %w", err)
	}
	var ours, uploaded []*Issuer
	for _, rec := range cas {
		if rec == nil {
			continue
		}
		// Ours: the active intermediate and those it retired (rotation);
		// a staged successor (NEXT) has issued nothing yet.
		isOurs := rec.Role == store.RoleIntermediate && rec.Lifecycle() != store.CAStateNext
		if !isOurs && rec.Role != store.RoleUploaded {
			continue
		}
		c, err := x509.ParseCertificate(rec.CertDER)
		if err != nil {
			continue // a record that does not parse trusts nothing
		}
		sum := sha256.Sum256(rec.CertDER)
		iss := &Issuer{ID: rec.ID, Cert: c, SHA256: strings.ToUpper(hex.EncodeToString(sum[:])), Uploaded: !isOurs}
		if isOurs {
			ours = append(ours, iss)
		} else {
			uploaded = append(uploaded, iss)
		}
	}
	newest := func(x, y *Issuer) int {
		if c := y.Cert.NotBefore.Compare(x.Cert.NotBefore); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	}
	slices.SortFunc(ours, newest)
	slices.SortFunc(uploaded, newest)
	issuers := append(ours, uploaded...)
	if !sameIssuers(a.issuers, issuers) || a.verified == nil {
		a.verified = map[[sha256.Size]byte]*Issuer{}
		a.issuers = issuers
		a.bySubject = map[string][]*Issuer{}
		for _, iss := range issuers {
			a.bySubject[string(iss.Cert.RawSubject)] = append(a.bySubject[string(iss.Cert.RawSubject)], iss)
		}
	}
	a.loadedAt, a.stale = now, false
	return nil
}

func sameIssuers(x, y []*Issuer) bool {
	return slices.EqualFunc(x, y, func(a, b *Issuer) bool {
		return a.ID == b.ID && a.Uploaded == b.Uploaded && bytes.Equal(a.Cert.Raw, b.Cert.Raw)
	})
}
