package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/scepca/scepca/store"
)

// storeObserver records one store operation: op is the method name (a fixed
// set), result one of the storeResult values.
type storeObserver func(op, result string, d time.Duration)

// meteredStore times every call of the storage contract and reports it to
// observe with a bounded label set: the method name and a result class
// derived from the store's sentinel errors, never a key or an ID.
//
// It embeds the store, so a method added to store.Store later still
// compiles and works, only untimed until it gets a wrapper here.
type meteredStore struct {
	store.Store
	observe storeObserver
}

var _ store.Store = meteredStore{}

// storeResult classifies err by the store's sentinels, so expected outcomes
// (not found, already used) are told apart from failures.
func storeResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrExists):
		return "exists"
	case errors.Is(err, store.ErrExpired):
		return "expired"
	case errors.Is(err, store.ErrUsed):
		return "used"
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	default:
		return "error"
	}
}

func timed[T any](s meteredStore, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	s.observe(op, storeResult(err), time.Since(start))
	return v, err
}

func timedErr(s meteredStore, op string, f func() error) error {
	start := time.Now()
	err := f()
	s.observe(op, storeResult(err), time.Since(start))
	return err
}

func (s meteredStore) CreateIntegration(ctx context.Context, in *store.Integration) error {
	return timedErr(s, "CreateIntegration", func() error { return s.Store.CreateIntegration(ctx, in) })
}

func (s meteredStore) UpdateIntegration(ctx context.Context, in *store.Integration) error {
	return timedErr(s, "UpdateIntegration", func() error { return s.Store.UpdateIntegration(ctx, in) })
}

func (s meteredStore) GetIntegration(ctx context.Context, id string) (*store.Integration, error) {
	return timed(s, "GetIntegration", func() (*store.Integration, error) { return s.Store.GetIntegration(ctx, id) })
}

func (s meteredStore) ListIntegrations(ctx context.Context) ([]*store.Integration, error) {
	return timed(s, "ListIntegrations", func() ([]*store.Integration, error) { return s.Store.ListIntegrations(ctx) })
}

func (s meteredStore) DeleteIntegration(ctx context.Context, id string) error {
	return timedErr(s, "DeleteIntegration", func() error { return s.Store.DeleteIntegration(ctx, id) })
}

func (s meteredStore) CreateCA(ctx context.Context, c *store.CA) error {
	return timedErr(s, "CreateCA", func() error { return s.Store.CreateCA(ctx, c) })
}

func (s meteredStore) UpdateCA(ctx context.Context, c *store.CA) error {
	return timedErr(s, "UpdateCA", func() error { return s.Store.UpdateCA(ctx, c) })
}

func (s meteredStore) GetCA(ctx context.Context, id string) (*store.CA, error) {
	return timed(s, "GetCA", func() (*store.CA, error) { return s.Store.GetCA(ctx, id) })
}

func (s meteredStore) ListCAs(ctx context.Context) ([]*store.CA, error) {
	return timed(s, "ListCAs", func() ([]*store.CA, error) { return s.Store.ListCAs(ctx) })
}

func (s meteredStore) DeleteCA(ctx context.Context, id string) error {
	return timedErr(s, "DeleteCA", func() error { return s.Store.DeleteCA(ctx, id) })
}

func (s meteredStore) PutCertificate(ctx context.Context, c *store.Certificate) error {
	return timedErr(s, "PutCertificate", func() error { return s.Store.PutCertificate(ctx, c) })
}

func (s meteredStore) GetCertificate(ctx context.Context, serial string) (*store.Certificate, error) {
	return timed(s, "GetCertificate", func() (*store.Certificate, error) { return s.Store.GetCertificate(ctx, serial) })
}

func (s meteredStore) ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error) {
	return timed(s, "ListCertificates", func() ([]*store.Certificate, error) { return s.Store.ListCertificates(ctx, f) })
}

func (s meteredStore) UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error {
	return timedErr(s, "UpdateCertificateStatus", func() error { return s.Store.UpdateCertificateStatus(ctx, serial, status, at, reason) })
}

func (s meteredStore) CountCertificates(ctx context.Context) (int, error) {
	return timed(s, "CountCertificates", func() (int, error) { return s.Store.CountCertificates(ctx) })
}

func (s meteredStore) ClaimTransaction(ctx context.Context, tx *store.Transaction, now time.Time) (*store.Transaction, error) {
	return timed(s, "ClaimTransaction", func() (*store.Transaction, error) { return s.Store.ClaimTransaction(ctx, tx, now) })
}

func (s meteredStore) GetTransaction(ctx context.Context, integrationID, transactionID string) (*store.Transaction, error) {
	return timed(s, "GetTransaction", func() (*store.Transaction, error) {
		return s.Store.GetTransaction(ctx, integrationID, transactionID)
	})
}

func (s meteredStore) ReleaseTransaction(ctx context.Context, integrationID, transactionID, claim string) error {
	return timedErr(s, "ReleaseTransaction", func() error {
		return s.Store.ReleaseTransaction(ctx, integrationID, transactionID, claim)
	})
}

func (s meteredStore) ConfirmTransaction(ctx context.Context, integrationID, transactionID, claim string) error {
	return timedErr(s, "ConfirmTransaction", func() error {
		return s.Store.ConfirmTransaction(ctx, integrationID, transactionID, claim)
	})
}

func (s meteredStore) SweepTransactions(ctx context.Context, now time.Time) (int, error) {
	return timed(s, "SweepTransactions", func() (int, error) { return s.Store.SweepTransactions(ctx, now) })
}

func (s meteredStore) PutOneTime(ctx context.Context, kind string, v *store.OneTime) error {
	return timedErr(s, "PutOneTime", func() error { return s.Store.PutOneTime(ctx, kind, v) })
}

func (s meteredStore) ConsumeOneTime(ctx context.Context, kind, key string, now time.Time) (*store.OneTime, error) {
	return timed(s, "ConsumeOneTime", func() (*store.OneTime, error) { return s.Store.ConsumeOneTime(ctx, kind, key, now) })
}

func (s meteredStore) RedeemOneTime(ctx context.Context, kind, key string, binding []byte, now time.Time) (*store.OneTime, error) {
	return timed(s, "RedeemOneTime", func() (*store.OneTime, error) {
		return s.Store.RedeemOneTime(ctx, kind, key, binding, now)
	})
}

func (s meteredStore) GetOneTime(ctx context.Context, kind, key string) (*store.OneTime, error) {
	return timed(s, "GetOneTime", func() (*store.OneTime, error) { return s.Store.GetOneTime(ctx, kind, key) })
}

func (s meteredStore) CountOneTime(ctx context.Context, kind, owner string, now time.Time) (int, error) {
	return timed(s, "CountOneTime", func() (int, error) { return s.Store.CountOneTime(ctx, kind, owner, now) })
}

func (s meteredStore) SweepOneTime(ctx context.Context, kind string, now time.Time) (int, error) {
	return timed(s, "SweepOneTime", func() (int, error) { return s.Store.SweepOneTime(ctx, kind, now) })
}

func (s meteredStore) RecordAttestation(ctx context.Context, a *store.Attestation) (*store.Device, *store.Binding, error) {
	start := time.Now()
	d, b, err := s.Store.RecordAttestation(ctx, a)
	s.observe("RecordAttestation", storeResult(err), time.Since(start))
	return d, b, err
}

func (s meteredStore) GetDevice(ctx context.Context, id string) (*store.Device, error) {
	return timed(s, "GetDevice", func() (*store.Device, error) { return s.Store.GetDevice(ctx, id) })
}

func (s meteredStore) ListDevices(ctx context.Context) ([]*store.Device, error) {
	return timed(s, "ListDevices", func() ([]*store.Device, error) { return s.Store.ListDevices(ctx) })
}

func (s meteredStore) SetDeviceStatus(ctx context.Context, id, status string, at time.Time) (*store.Device, error) {
	return timed(s, "SetDeviceStatus", func() (*store.Device, error) { return s.Store.SetDeviceStatus(ctx, id, status, at) })
}

func (s meteredStore) GetBinding(ctx context.Context, certSHA256 string) (*store.Binding, error) {
	return timed(s, "GetBinding", func() (*store.Binding, error) { return s.Store.GetBinding(ctx, certSHA256) })
}

func (s meteredStore) ListBindings(ctx context.Context) ([]*store.Binding, error) {
	return timed(s, "ListBindings", func() ([]*store.Binding, error) { return s.Store.ListBindings(ctx) })
}

func (s meteredStore) AppendEvents(ctx context.Context, events []*store.Event) error {
	return timedErr(s, "AppendEvents", func() error { return s.Store.AppendEvents(ctx, events) })
}

func (s meteredStore) ListEvents(ctx context.Context, f store.EventFilter) ([]*store.Event, error) {
	return timed(s, "ListEvents", func() ([]*store.Event, error) { return s.Store.ListEvents(ctx, f) })
}

func (s meteredStore) SweepEvents(ctx context.Context, cutoff time.Time) (int, error) {
	return timed(s, "SweepEvents", func() (int, error) { return s.Store.SweepEvents(ctx, cutoff) })
}

func (s meteredStore) CreateToken(ctx context.Context, t *store.APIToken) error {
	return timedErr(s, "CreateToken", func() error { return s.Store.CreateToken(ctx, t) })
}

func (s meteredStore) GetToken(ctx context.Context, id string) (*store.APIToken, error) {
	return timed(s, "GetToken", func() (*store.APIToken, error) { return s.Store.GetToken(ctx, id) })
}

func (s meteredStore) ListTokens(ctx context.Context) ([]*store.APIToken, error) {
	return timed(s, "ListTokens", func() ([]*store.APIToken, error) { return s.Store.ListTokens(ctx) })
}

func (s meteredStore) DeleteToken(ctx context.Context, id string) error {
	return timedErr(s, "DeleteToken", func() error { return s.Store.DeleteToken(ctx, id) })
}

// expiringWindow is how far ahead scepca_certificates_expiring counts.
const expiringWindow = 30 * 24 * time.Hour

// expiringCounter counts issued (not revoked, not on hold), unexpired
// certificates whose NotAfter falls within expiringWindow. Listing every
// certificate costs a store scan, so the count is cached for ttl and a
// scrape within it reuses the last answer.
type expiringCounter struct {
	certs interface {
		ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error)
	}
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	at    time.Time
	count float64
}

// Value returns the cached count, refreshing it when older than ttl; -1
// when the store cannot be read.
func (c *expiringCounter) Value() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.at.IsZero() && now.Sub(c.at) < c.ttl {
		return c.count
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := c.certs.ListCertificates(ctx, store.CertFilter{Status: store.CertIssued})
	if err != nil {
		return -1
	}
	n := 0
	for _, cert := range list {
		if cert.Status == store.CertIssued && cert.NotAfter.After(now) && !cert.NotAfter.After(now.Add(expiringWindow)) {
			n++
		}
	}
	c.at, c.count = now, float64(n)
	return c.count
}
