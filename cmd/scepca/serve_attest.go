package main

import (
	"flag"
	"log/slog"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/store"
)

// attestOptions are the verifier's flags of `scepca serve`.
type attestOptions struct {
	nonceTTL  time.Duration
	maxUnused time.Duration
	crlTTL    time.Duration
	// observe is told every verification's reason (metrics).
	observe func(reason string)
}

func (o *attestOptions) register(fs *flag.FlagSet) {
	fs.DurationVar(&o.nonceTTL, "attest-nonce-ttl", attest.DefaultNonceTTL, "how long an attestation nonce can be presented")
	fs.DurationVar(&o.maxUnused, "attest-max-unused", attest.DefaultMaxUnused, "revoke a certificate not used in a successful attestation for this long (counted from issuance or its last use); 0 disables")
	fs.DurationVar(&o.crlTTL, "attest-crl-max-age", attest.DefaultCRLMaxAge, "cache an uploaded issuer's CRL at most this long, even if its nextUpdate is later")
}

// newAttestation wires the attestation verifier and its background sweeper
// over st, opening managementHints with kek.
func newAttestation(o *attestOptions, st store.Store, kek *ca.KEK, log, audit *slog.Logger) (*attest.Service, *attest.Sweeper, error) {
	nonces, err := attest.NewNonces(st, o.nonceTTL, nil)
	if err != nil {
		return nil, nil, err
	}
	anchors, err := attest.NewAnchors(st, 0, nil)
	if err != nil {
		return nil, nil, err
	}
	crls, err := attest.NewCRLs(attest.CRLConfig{MaxAge: o.crlTTL})
	if err != nil {
		return nil, nil, err
	}
	v, err := attest.New(attest.Config{
		Nonces: nonces, Anchors: anchors, Certificates: st, CRLs: crls,
		Devices: st, Integrations: st, Hints: kek, Logger: log, Observe: o.observe,
	})
	if err != nil {
		return nil, nil, err
	}
	svc, err := attest.NewService(nonces, anchors, v)
	if err != nil {
		return nil, nil, err
	}
	maxUnused := o.maxUnused
	if maxUnused == 0 {
		maxUnused = -1 // the flag's 0 disables; the sweeper's 0 means its default
	}
	sweeper, err := attest.NewSweeper(attest.SweeperConfig{Store: st, Nonces: nonces, MaxUnused: maxUnused, Audit: audit})
	if err != nil {
		return nil, nil, err
	}
	return svc, sweeper, nil
}
