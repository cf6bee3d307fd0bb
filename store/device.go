package store

import (
	"context"
	"slices"
	"time"
)

// Device lifecycle states (DESIGN.md §2, reference/device-context-deployment-guide.txt).
// DeviceDeleted marks a tombstone: the record stays so that the device's
// certificate bindings stay refused, and a later attestation with a new
// certificate starts the device afresh.
const (
	DeviceActive      = "ACTIVE"
	DeviceSuspended   = "SUSPENDED"
	DeviceDeactivated = "DEACTIVATED"
	DeviceDeleted     = "DELETED"
)

// Device is what the attestation verifier knows of one device, keyed by the
// device ID the device presents (a UDID, an Entra device ID, ...).
type Device struct {
	ID            string `json:"id"`
	Platform      string `json:"platform"`
	User          string `json:"user,omitempty"`
	IntegrationID string `json:"integrationId,omitempty"`
	Status        string `json:"status"`
	// FirstSeen is the first successful attestation (since the device was
	// last deleted); LastAttested the latest.
	FirstSeen    time.Time `json:"firstSeen"`
	LastAttested time.Time `json:"lastAttested"`
	UpdatedAt    time.Time `json:"updatedAt"`
	// Certificates are the certificates bound to the device, in the order
	// they were first used.
	Certificates []DeviceCertificate `json:"certificates,omitempty"`
	// TPMAKName is the uppercase hexadecimal TPM Name of the attestation
	// key pinned on first use (docs/attestation.md, "TPM key attestation"):
	// the AK of the first verified TPM evidence since the device was
	// created or last deleted. It is never replaced.
	TPMAKName string `json:"tpmAkName,omitempty"`
}

// DeviceCertificate names one certificate bound to a device.
type DeviceCertificate struct {
	// SHA256 is the uppercase hexadecimal SHA-256 of the certificate DER,
	// the binding's key.
	SHA256 string `json:"sha256"`
	// Serial is the certificate's serial in canonical form (uppercase
	// hexadecimal without leading zeros).
	Serial string `json:"serial"`
	// CAID is the store ID of the issuing CA record (ours or uploaded).
	CAID string `json:"caId"`
}

// Binding ties a certificate to the device that first attested with it
// (DESIGN.md §2, "Binding"). It is keyed by the certificate's SHA-256.
type Binding struct {
	CertSHA256 string    `json:"certSha256"`
	DeviceID   string    `json:"deviceId"`
	Serial     string    `json:"serial"`
	CAID       string    `json:"caId"`
	BoundAt    time.Time `json:"boundAt"`
	// LastUsedAt is the latest successful attestation with the certificate;
	// the 90-day sweep reads it.
	LastUsedAt time.Time `json:"lastUsedAt"`
	// Revoked marks a binding refused for good: its device was deleted.
	Revoked bool `json:"revoked,omitempty"`
}

// Attestation is one successful attestation to record.
type Attestation struct {
	DeviceID      string
	Platform      string
	User          string
	IntegrationID string
	// Certificate is the certificate that signed a desktop proof; nil for a
	// mobile (managementHint) proof.
	Certificate *DeviceCertificate
	At          time.Time
	// Nonce, when set, is the KindNonce one-time value the proof presented.
	// It is consumed (marked used at At) in the same write, so a sign-in
	// costs one durable write: a nonce that is absent, used or expired
	// fails the call with ErrNotFound, ErrUsed or ErrExpired and writes
	// nothing; a binding or lifecycle refusal still consumes it.
	Nonce string
	// TPMAKName, when set, is the AK of verified TPM evidence: it is pinned
	// on the device when the device has none pinned (first use) and
	// otherwise left as it is; the caller compares the returned device's
	// TPMAKName with it.
	TPMAKName string
}

// DeviceStore keeps devices and certificate bindings for the attestation
// verifier.
type DeviceStore interface {
	// RecordAttestation records a successful attestation in one atomic
	// write: it binds a.Certificate (when set) to a.DeviceID if the
	// certificate is unbound; creates the device (ACTIVE, FirstSeen =
	// a.At) if it is absent or DELETED; and sets the device's
	// LastAttested, Platform, IntegrationID, User (when non-empty), adds
	// the certificate to its list, and sets the binding's LastUsedAt.
	//
	// It returns ErrConflict, having written nothing but the consumption of
	// a.Nonce, when the certificate is bound to another device, its binding
	// is revoked, or the device is SUSPENDED or DEACTIVATED. With
	// ErrConflict or success it returns the device and the binding as they
	// are after the call (either may be nil), so the caller can tell why.
	// Among concurrent first uses of one certificate by different devices
	// exactly one binds it; among concurrent uses of one nonce exactly one
	// consumes it.
	RecordAttestation(ctx context.Context, a *Attestation) (*Device, *Binding, error)
	// GetDevice returns the device id; ErrNotFound if absent.
	GetDevice(ctx context.Context, id string) (*Device, error)
	// ListDevices returns every device, tombstones included, ordered by ID.
	ListDevices(ctx context.Context) ([]*Device, error)
	// SetDeviceStatus sets the status of device id and its UpdatedAt to
	// at, and returns the device as stored; ErrNotFound if absent. Setting
	// DeviceDeleted also marks every binding of the device revoked, in the
	// same write.
	SetDeviceStatus(ctx context.Context, id, status string, at time.Time) (*Device, error)
	// GetBinding returns the binding of the certificate whose DER has the
	// given SHA-256 (uppercase hexadecimal); ErrNotFound if unbound.
	GetBinding(ctx context.Context, certSHA256 string) (*Binding, error)
	// ListBindings returns every binding, ordered by certificate hash.
	ListBindings(ctx context.Context) ([]*Binding, error)
}

// Apply is the decision RecordAttestation makes, one implementation for
// every backend. Given the device and the certificate's binding as stored
// (nil when absent; fresh copies, which it may modify), it reports whether
// the attestation is refused (the certificate is bound to another device
// or its binding is revoked, or the device is SUSPENDED or DEACTIVATED)
// and, when it is not, returns the device and binding to write (bind nil
// without a certificate).
func (a *Attestation) Apply(dev *Device, bind *Binding) (*Device, *Binding, bool) {
	if bind != nil && (bind.DeviceID != a.DeviceID || bind.Revoked) {
		return dev, bind, true
	}
	if dev != nil && (dev.Status == DeviceSuspended || dev.Status == DeviceDeactivated) {
		return dev, bind, true
	}
	if dev == nil || dev.Status == DeviceDeleted {
		dev = &Device{ID: a.DeviceID, Status: DeviceActive, FirstSeen: a.At}
	}
	dev.Platform = a.Platform
	dev.IntegrationID = a.IntegrationID
	if a.User != "" {
		dev.User = a.User
	}
	dev.LastAttested = a.At
	dev.UpdatedAt = a.At
	if dev.TPMAKName == "" {
		dev.TPMAKName = a.TPMAKName
	}
	if a.Certificate == nil {
		return dev, nil, false
	}
	if bind == nil {
		bind = &Binding{
			CertSHA256: a.Certificate.SHA256,
			DeviceID:   a.DeviceID,
			Serial:     a.Certificate.Serial,
			CAID:       a.Certificate.CAID,
			BoundAt:    a.At,
		}
	}
	bind.LastUsedAt = a.At
	if !slices.ContainsFunc(dev.Certificates, func(c DeviceCertificate) bool { return c.SHA256 == a.Certificate.SHA256 }) {
		dev.Certificates = append(dev.Certificates, *a.Certificate)
	}
	return dev, bind, false
}
