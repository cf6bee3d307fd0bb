package main

import (
	"context"
	"flag"
	"time"

	"github.com/scepca/scepca/admin"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/store"
)

// revocationOptions are the CRL and OCSP flags of `scepca serve`.
type revocationOptions struct {
	crlRefresh time.Duration
}

func (o *revocationOptions) register(fs *flag.FlagSet) {
	fs.DurationVar(&o.crlRefresh, "crl-refresh", ca.DefaultCRLRefresh, "serve a cached CRL at most this long before reading the store again: the bound on how late a revocation made by another replica shows in this one's CRL (at most 1h; this replica's own changes show at once)")
}

// newRevocation wires the CRL and OCSP publisher over authority and st,
// and the public routes that serve it.
func newRevocation(o *revocationOptions, authority *ca.Authority, st ca.RevocationStore) (*ca.Revocation, *admin.Revocation, error) {
	rev, err := ca.NewRevocation(ca.RevocationConfig{Issuers: authority, Store: st, Refresh: o.crlRefresh})
	if err != nil {
		return nil, nil, err
	}
	routes, err := admin.NewRevocation(rev)
	if err != nil {
		return nil, nil, err
	}
	return rev, routes, nil
}

// statusNotifier is the store as the services that change certificate
// status use it (admin API, device lifecycle, 90-day sweep, Intune
// notification failures): each status change tells the revocation
// publisher, so this replica's CRL shows it at once.
type statusNotifier struct {
	store.Store
	changed func()
}

func (s statusNotifier) UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error {
	err := s.Store.UpdateCertificateStatus(ctx, serial, status, at, reason)
	s.changed()
	return err
}

// scepAuthority is the CA as the SCEP service uses it: GetCRL is answered
// from the same CRL cache as /crl/{caID}.crl, for the active intermediate
// or a retired one.
type scepAuthority struct {
	*ca.Authority
	rev *ca.Revocation
}

func (a scepAuthority) CRL(ctx context.Context, caID string) ([]byte, error) {
	c, err := a.rev.CRL(ctx, caID)
	if err != nil {
		return nil, err
	}
	return c.DER, nil
}
