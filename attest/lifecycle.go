package attest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/scepca/scepca/store"
)

// ErrTransition: a lifecycle change that the device's current state does
// not allow (e.g. activating a SUSPENDED device). Asking for the state a
// device is already in is not one: it succeeds and applies the effects again
// (see change).
var ErrTransition = errors.New("attest: lifecycle transition not allowed")

// LifecycleStore is what lifecycle changes read and write.
type LifecycleStore interface {
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	SetDeviceStatus(ctx context.Context, id, status string, at time.Time) (*store.Device, error)
	GetCertificate(ctx context.Context, serial string) (*store.Certificate, error)
	ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error)
	UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error
}

// Lifecycle changes a device's lifecycle state with the certificate effects
// of DESIGN.md §2: SUSPENDED leaves certificates untouched; DEACTIVATED
// puts our certificates of the device on hold (CRL reason
// certificateHold), and reactivation lifts the hold; deletion revokes them
// for good (reason cessationOfOperation) and refuses every certificate
// bound to the device, ours or an uploaded issuer's. The admin API and CLI
// call it; the verifier reads the resulting state.
//
// "Our certificates of the device" are those bound to it and those whose
// subject names it (Okta-style "<user> managementAttestation <deviceId>").
type Lifecycle struct {
	st    LifecycleStore
	now   func() time.Time
	audit *slog.Logger
}

// NewLifecycle returns the lifecycle operations over st.
func NewLifecycle(st LifecycleStore, now func() time.Time, audit *slog.Logger) (*Lifecycle, error) {
	if st == nil {
		return nil, errors.New("attest: lifecycle: nil store")
	}
	if now == nil {
		now = time.Now
	}
	if audit == nil {
		audit = slog.New(slog.DiscardHandler)
	}
	return &Lifecycle{st: st, now: now, audit: audit}, nil
}

// Suspend: ACTIVE → SUSPENDED; certificates untouched.
func (l *Lifecycle) Suspend(ctx context.Context, id string) (*store.Device, error) {
	return l.change(ctx, id, "suspend", store.DeviceSuspended, store.DeviceActive)
}

// Unsuspend: SUSPENDED → ACTIVE.
func (l *Lifecycle) Unsuspend(ctx context.Context, id string) (*store.Device, error) {
	return l.change(ctx, id, "unsuspend", store.DeviceActive, store.DeviceSuspended)
}

// Deactivate: ACTIVE or SUSPENDED → DEACTIVATED; our certificates of the
// device go on hold.
func (l *Lifecycle) Deactivate(ctx context.Context, id string) (*store.Device, error) {
	return l.change(ctx, id, "deactivate", store.DeviceDeactivated, store.DeviceActive, store.DeviceSuspended)
}

// Activate: DEACTIVATED → ACTIVE; the holds are lifted.
func (l *Lifecycle) Activate(ctx context.Context, id string) (*store.Device, error) {
	return l.change(ctx, id, "activate", store.DeviceActive, store.DeviceDeactivated)
}

// Delete: any state → DELETED (a tombstone); our certificates of the device
// are revoked and every binding of the device is refused for good. A new
// certificate presented with the same device ID later starts a new device.
func (l *Lifecycle) Delete(ctx context.Context, id string) (*store.Device, error) {
	return l.change(ctx, id, "delete", store.DeviceDeleted, store.DeviceActive, store.DeviceSuspended, store.DeviceDeactivated)
}

// change moves device id to status from one of the states in from. Asking
// for the state the device is already in applies the certificate effects
// again and succeeds, so a change interrupted between the device and its
// certificates can be completed by repeating it.
func (l *Lifecycle) change(ctx context.Context, id, op, status string, from ...string) (*store.Device, error) {
	dev, err := l.st.GetDevice(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("attest: %s device %s: %w", op, id, err)
	}
	prev := dev.Status
	allowed := prev == status
	for _, f := range from {
		allowed = allowed || prev == f
	}
	if !allowed {
		return nil, fmt.Errorf("attest: %s device %s: it is %s: %w", op, id, prev, ErrTransition)
	}
	now := l.now().UTC()
	if prev != status {
		if dev, err = l.st.SetDeviceStatus(ctx, id, status, now); err != nil {
			return nil, fmt.Errorf("attest: %s device %s: %w", op, id, err)
		}
	}
	serials, err := l.effects(ctx, dev, op, now)
	l.audit.InfoContext(ctx, "device.lifecycle."+op, "target", id, "from", prev, "to", status, "certificates", serials, "outcome", outcome(err))
	if err != nil {
		return nil, fmt.Errorf("attest: %s device %s: %w", op, id, err)
	}
	return dev, nil
}

func outcome(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

// effects applies the certificate effects of op and returns the serials
// changed.
func (l *Lifecycle) effects(ctx context.Context, dev *store.Device, op string, now time.Time) ([]string, error) {
	var from, to string
	reason := 0
	switch op {
	case "deactivate":
		from, to, reason = store.CertIssued, store.CertOnHold, reasonCertificateHold
	case "activate":
		from, to = store.CertOnHold, store.CertIssued
	case "delete":
		to, reason = store.CertRevoked, ReasonCessationOfOperation
	default:
		return nil, nil
	}
	certs, err := l.certificates(ctx, dev)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, c := range certs {
		if c.Status == to || from != "" && c.Status != from || c.Status == store.CertRevoked {
			continue
		}
		at := now
		if to == store.CertIssued {
			at = time.Time{}
		}
		err := l.st.UpdateCertificateStatus(ctx, c.Serial, to, at, reason)
		if errors.Is(err, store.ErrConflict) {
			continue // revoked since the list was read: revocation is final
		}
		if err != nil {
			return changed, err
		}
		changed = append(changed, c.Serial)
	}
	return changed, nil
}

// certificates returns our certificate records of dev: bound to it, or
// naming it in their subject.
func (l *Lifecycle) certificates(ctx context.Context, dev *store.Device) ([]*store.Certificate, error) {
	seen := map[string]bool{}
	var out []*store.Certificate
	for _, dc := range dev.Certificates {
		c, err := l.st.GetCertificate(ctx, dc.Serial)
		if errors.Is(err, store.ErrNotFound) {
			continue // an uploaded issuer's certificate: its binding is what refuses it
		}
		if err != nil {
			return nil, err
		}
		if c.CAID != dc.CAID || seen[c.Serial] {
			continue
		}
		seen[c.Serial] = true
		out = append(out, c)
	}
	all, err := l.st.ListCertificates(ctx, store.CertFilter{})
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if c.DeviceID == dev.ID && !seen[c.Serial] {
			seen[c.Serial] = true
			out = append(out, c)
		}
	}
	return out, nil
}
