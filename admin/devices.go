package admin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/store"
)

// deviceStores is the storage the devices API reads; lifecycle changes go
// through attest.Lifecycle, which writes.
type deviceStores interface {
	ListDevices(ctx context.Context) ([]*store.Device, error)
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	SetDeviceStatus(ctx context.Context, id, status string, at time.Time) (*store.Device, error)
	GetCertificate(ctx context.Context, serial string) (*store.Certificate, error)
	ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error)
	UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error
}

// Device is a device as the API shows it.
type Device struct {
	ID            string    `json:"id"`
	Platform      string    `json:"platform"`
	User          string    `json:"user,omitempty"`
	IntegrationID string    `json:"integrationId,omitempty"`
	Status        string    `json:"status"`
	FirstSeen     time.Time `json:"firstSeen"`
	LastAttested  time.Time `json:"lastAttested"`
	UpdatedAt     time.Time `json:"updatedAt"`
	TPMAKName     string    `json:"tpmAkName,omitempty"`
	// Certificates are shown by get and lifecycle answers, not by list:
	// those bound to the device and our certificates naming it in their
	// subject (the ones lifecycle changes affect).
	Certificates []DeviceCertificate `json:"certificates,omitempty"`
}

// DeviceCertificate is one certificate of a device.
type DeviceCertificate struct {
	Serial string `json:"serial"`
	CAID   string `json:"caId"`
	// SHA256 is the uppercase hexadecimal SHA-256 of the certificate DER.
	SHA256 string `json:"sha256"`
	// Status (ISSUED, ON_HOLD, REVOKED) and the rest come from our
	// certificate record; a certificate of an uploaded issuer has none
	// (its issuer's CRL decides), and Bound tells whether the device has
	// used it in an attestation.
	Status        string    `json:"status,omitempty"`
	IntegrationID string    `json:"integrationId,omitempty"`
	NotAfter      time.Time `json:"notAfter,omitzero"`
	Bound         bool      `json:"bound"`
}

// Device list bounds.
const (
	defaultDeviceLimit = 100
	maxDeviceLimit     = 1000
)

// deviceFilter is a parsed GET /api/v1/devices query.
type deviceFilter struct {
	status, platform, integrationID, user string
	after                                 string // the cursor: IDs after this one
	limit                                 int
}

func parseDeviceFilter(q url.Values) (*deviceFilter, error) {
	for k := range q {
		switch k {
		case "status", "platform", "integrationId", "user", "limit", "cursor":
		default:
			return nil, problemf(http.StatusBadRequest, "unknown query parameter %q (filters: status, platform, integrationId, user; pagination: limit, cursor)", k)
		}
	}
	f := &deviceFilter{status: q.Get("status"), platform: q.Get("platform"), integrationID: q.Get("integrationId"), user: q.Get("user"), limit: defaultDeviceLimit}
	switch f.status {
	case "", store.DeviceActive, store.DeviceSuspended, store.DeviceDeactivated, store.DeviceDeleted:
	default:
		return nil, problemf(http.StatusBadRequest, "status must be ACTIVE, SUSPENDED, DEACTIVATED or DELETED")
	}
	switch f.platform {
	case "", attest.PlatformMacOS, attest.PlatformWindows, attest.PlatformIOS, attest.PlatformAndroid:
	default:
		return nil, problemf(http.StatusBadRequest, "platform must be MACOS, WINDOWS, IOS or ANDROID")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeviceLimit {
			return nil, problemf(http.StatusBadRequest, "limit must be an integer between 1 and %d", maxDeviceLimit)
		}
		f.limit = n
	}
	if v := q.Get("cursor"); v != "" {
		id, err := decodeCursor(v)
		if err != nil {
			return nil, problemf(http.StatusBadRequest, "cursor is not one this API returned")
		}
		f.after = id
	}
	return f, nil
}

// The cursor is opaque to clients: the last ID of the page, base64url
// encoded behind a version prefix, so its form can change.
const cursorPrefix = "d1:"

func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + id))
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", err
	}
	id, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok || id == "" || !utf8.ValidString(id) {
		return "", errors.New("admin: malformed cursor")
	}
	return id, nil
}

func (f *deviceFilter) match(d *store.Device) bool {
	if f.status == "" && d.Status == store.DeviceDeleted {
		return false // tombstones only when asked for
	}
	return (f.status == "" || d.Status == f.status) &&
		(f.platform == "" || d.Platform == f.platform) &&
		(f.integrationID == "" || d.IntegrationID == f.integrationID) &&
		(f.user == "" || d.User == f.user) &&
		d.ID > f.after
}

// listDevices answers one page of devices ordered by ID, and a Link
// header (RFC 8288) with rel="next" when there are more.
func (a *API) listDevices(w http.ResponseWriter, r *http.Request) error {
	f, err := parseDeviceFilter(r.URL.Query())
	if err != nil {
		return err
	}
	all, err := a.store.ListDevices(r.Context())
	if err != nil {
		return err
	}
	out := make([]*Device, 0, min(f.limit, len(all)))
	more := false
	for _, d := range all {
		if !f.match(d) {
			continue
		}
		if len(out) == f.limit {
			more = true
			break
		}
		out = append(out, deviceView(d))
	}
	if more {
		q := r.URL.Query()
		q.Set("cursor", encodeCursor(out[len(out)-1].ID))
		q.Set("limit", strconv.Itoa(f.limit))
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, q.Encode()))
	}
	return writeJSON(w, http.StatusOK, out)
}

func deviceView(d *store.Device) *Device {
	return &Device{
		ID: d.ID, Platform: d.Platform, User: d.User, IntegrationID: d.IntegrationID, Status: d.Status,
		FirstSeen: d.FirstSeen, LastAttested: d.LastAttested, UpdatedAt: d.UpdatedAt, TPMAKName: d.TPMAKName,
	}
}

// deviceWithCertificates is the view of d with its certificates.
func (a *API) deviceWithCertificates(ctx context.Context, d *store.Device) (*Device, error) {
	v := deviceView(d)
	seen := map[string]bool{}
	for _, dc := range d.Certificates {
		c := DeviceCertificate{Serial: dc.Serial, CAID: dc.CAID, SHA256: dc.SHA256, Bound: true}
		rec, err := a.store.GetCertificate(ctx, dc.Serial)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		case rec.CAID == dc.CAID:
			c.Status, c.IntegrationID, c.NotAfter = rec.Status, rec.IntegrationID, rec.NotAfter
		}
		seen[dc.Serial+"/"+dc.CAID] = true
		v.Certificates = append(v.Certificates, c)
	}
	// Ours that name the device in their subject but were never used.
	named, err := a.store.ListCertificates(ctx, store.CertFilter{DeviceID: d.ID})
	if err != nil {
		return nil, err
	}
	for _, rec := range named {
		if rec.DeviceID != d.ID || seen[rec.Serial+"/"+rec.CAID] {
			continue
		}
		sum := sha256.Sum256(rec.DER)
		v.Certificates = append(v.Certificates, DeviceCertificate{
			Serial: rec.Serial, CAID: rec.CAID, SHA256: strings.ToUpper(hex.EncodeToString(sum[:])),
			Status: rec.Status, IntegrationID: rec.IntegrationID, NotAfter: rec.NotAfter,
		})
	}
	if v.Certificates == nil {
		v.Certificates = []DeviceCertificate{}
	}
	return v, nil
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	d, err := a.store.GetDevice(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, "no device %q", id)
	}
	if err != nil {
		return err
	}
	v, err := a.deviceWithCertificates(r.Context(), d)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// deviceAction is one lifecycle change of DESIGN.md §2, applied by
// attest.Lifecycle with its certificate effects and audit event.
type deviceAction struct {
	name string
	// from names the states the action applies to, for the 409 detail.
	from string
	do   func(l *attest.Lifecycle, ctx context.Context, id string) (*store.Device, error)
}

var (
	deviceSuspend    = deviceAction{"suspend", "an ACTIVE device", (*attest.Lifecycle).Suspend}
	deviceUnsuspend  = deviceAction{"unsuspend", "a SUSPENDED device", (*attest.Lifecycle).Unsuspend}
	deviceDeactivate = deviceAction{"deactivate", "an ACTIVE or SUSPENDED device", (*attest.Lifecycle).Deactivate}
	deviceActivate   = deviceAction{"activate", "a DEACTIVATED device", (*attest.Lifecycle).Activate}
	deviceDelete     = deviceAction{"delete", "any device", (*attest.Lifecycle).Delete}
)

// changeDevice applies a lifecycle action to device id and returns the
// device with its certificates as they are after it. Repeating an action
// whose state the device is already in succeeds and re-applies its
// certificate effects (attest.Lifecycle).
func (a *API) changeDevice(ctx context.Context, id string, act deviceAction) (*Device, error) {
	d, err := act.do(a.lifecycle, ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, problemf(http.StatusNotFound, "no device %q", id)
	case errors.Is(err, attest.ErrTransition):
		status := "in another state"
		if cur, gerr := a.store.GetDevice(ctx, id); gerr == nil {
			status = cur.Status
		}
		return nil, &problemError{status: http.StatusConflict, detail: fmt.Sprintf("device %q is %s: %s applies to %s", id, status, act.name, act.from), err: err}
	case err != nil:
		return nil, err
	}
	return a.deviceWithCertificates(ctx, d)
}

func (a *API) deviceLifecycle(act deviceAction) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := a.changeDevice(r.Context(), r.PathValue("id"), act)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, v)
	}
}
