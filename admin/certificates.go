package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/store"
)

// certStores is the storage the certificates routes use.
type certStores interface {
	GetCertificate(ctx context.Context, serial string) (*store.Certificate, error)
	ListCertificates(ctx context.Context, f store.CertFilter) ([]*store.Certificate, error)
	UpdateCertificateStatus(ctx context.Context, serial, status string, at time.Time, reason int) error
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	GetBinding(ctx context.Context, certSHA256 string) (*store.Binding, error)
}

// RFC 5280 CRLReason codes (Section 5.3.1) the API names.
const (
	reasonUnspecified     = 0
	reasonCertificateHold = 6
	reasonRemoveFromCRL   = 8
)

// crlReasons are the RFC 5280 CRLReason names by code; 7 is unused.
var crlReasons = map[int]string{
	0:  "unspecified",
	1:  "keyCompromise",
	2:  "cACompromise",
	3:  "affiliationChanged",
	4:  "superseded",
	5:  "cessationOfOperation",
	6:  "certificateHold",
	8:  "removeFromCRL",
	9:  "privilegeWithdrawn",
	10: "aACompromise",
}

// reasonNames lists the reasons a revocation may give, for error details.
const reasonNames = "unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise (or their codes 0-6, 9, 10)"

// Certificate is an issued certificate as the API shows it.
type Certificate struct {
	Serial        string    `json:"serial"`
	CAID          string    `json:"caId"`
	IntegrationID string    `json:"integrationId"`
	Subject       string    `json:"subject"`
	User          string    `json:"user,omitempty"`
	DeviceID      string    `json:"deviceId,omitempty"`
	NotBefore     time.Time `json:"notBefore"`
	NotAfter      time.Time `json:"notAfter"`
	IssuedAt      time.Time `json:"issuedAt"`
	// SHA256 is the uppercase hexadecimal SHA-256 of the certificate DER.
	SHA256 string `json:"sha256"`
	// Status is ISSUED, REVOKED or ON_HOLD.
	Status string `json:"status"`
	// RevokedAt and RevocationReason (the RFC 5280 name) are set when the
	// certificate is REVOKED or ON_HOLD (reason certificateHold).
	RevokedAt        time.Time `json:"revokedAt,omitzero"`
	RevocationReason string    `json:"revocationReason,omitempty"`
	// PEM is the certificate itself; only a single certificate's GET has it.
	PEM string `json:"pem,omitempty"`
}

func certView(c *store.Certificate) *Certificate {
	sum := sha256.Sum256(c.DER)
	v := &Certificate{
		Serial:        c.Serial,
		CAID:          c.CAID,
		IntegrationID: c.IntegrationID,
		Subject:       c.Subject,
		User:          c.User,
		DeviceID:      c.DeviceID,
		NotBefore:     c.NotBefore.UTC(),
		NotAfter:      c.NotAfter.UTC(),
		IssuedAt:      c.IssuedAt.UTC(),
		SHA256:        strings.ToUpper(hex.EncodeToString(sum[:])),
		Status:        c.Status,
	}
	switch c.Status {
	case store.CertRevoked:
		v.RevokedAt, v.RevocationReason = c.RevokedAt.UTC(), reasonName(c.RevocationReason)
	case store.CertOnHold:
		v.RevokedAt, v.RevocationReason = c.RevokedAt.UTC(), crlReasons[reasonCertificateHold]
	}
	return v
}

func reasonName(code int) string {
	if n, ok := crlReasons[code]; ok {
		return n
	}
	return strconv.Itoa(code)
}

// RevokeRequest revokes a certificate or puts it on hold.
type RevokeRequest struct {
	// Reason is an RFC 5280 CRLReason, by name ("keyCompromise") or code
	// (1). certificateHold puts the certificate on hold; removeFromCRL is
	// refused (lift a hold with .../unhold).
	Reason json.RawMessage `json:"reason"`
}

// parseReason returns the CRLReason code of raw: a name (any case) or a
// number.
func parseReason(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, problemf(http.StatusBadRequest, "reason is required: one of %s", reasonNames)
	}
	code := -1
	var name string
	var num json.Number
	switch {
	case json.Unmarshal(raw, &name) == nil:
		for c, n := range crlReasons {
			if strings.EqualFold(n, name) {
				code = c
			}
		}
	case json.Unmarshal(raw, &num) == nil:
		if n, err := num.Int64(); err == nil && n >= 0 && n <= 10 {
			code = int(n)
		}
	}
	if _, ok := crlReasons[code]; !ok {
		return 0, problemf(http.StatusBadRequest, "reason %s is not an RFC 5280 CRLReason: want one of %s", raw, reasonNames)
	}
	if code == reasonRemoveFromCRL {
		return 0, problemf(http.StatusBadRequest, "reason removeFromCRL (8) only appears in delta CRLs: lift a hold with POST /api/v1/certificates/{serial}/unhold")
	}
	return code, nil
}

// Certificate list page sizes.
const (
	defaultCertLimit = 100
	maxCertLimit     = 1000
)

// certListParams are the query parameters GET /api/v1/certificates takes.
var certListParams = map[string]bool{
	"integrationId": true, "user": true, "deviceId": true, "status": true,
	"expiringBefore": true, "limit": true, "cursor": true,
}

// certFilter reads the list query: the filters, limit (1-1000, default
// 100) and the opaque cursor of a previous page's Link header.
func certFilter(q url.Values) (store.CertFilter, error) {
	for k, v := range q {
		if !certListParams[k] {
			return store.CertFilter{}, problemf(http.StatusBadRequest, "unknown query parameter %q: the filters are integrationId, user, deviceId, status, expiringBefore; pages use limit and cursor", k)
		}
		if len(v) > 1 {
			return store.CertFilter{}, problemf(http.StatusBadRequest, "query parameter %q is given %d times", k, len(v))
		}
	}
	f := store.CertFilter{
		IntegrationID: q.Get("integrationId"),
		User:          q.Get("user"),
		DeviceID:      q.Get("deviceId"),
		Status:        q.Get("status"),
		Limit:         defaultCertLimit,
	}
	switch f.Status {
	case "", store.CertIssued, store.CertRevoked, store.CertOnHold:
	default:
		return f, problemf(http.StatusBadRequest, "status must be ISSUED, REVOKED or ON_HOLD, not %q", f.Status)
	}
	if s := q.Get("expiringBefore"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return f, problemf(http.StatusBadRequest, "expiringBefore must be an RFC 3339 time such as 2027-01-31T00:00:00Z, not %q", s)
		}
		f.ExpiringBefore = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxCertLimit {
			return f, problemf(http.StatusBadRequest, "limit must be an integer from 1 to %d, not %q", maxCertLimit, s)
		}
		f.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		n, perr := ca.ParseSerial(string(b))
		if err != nil || perr != nil {
			return f, problemf(http.StatusBadRequest, "cursor %q is not one this API issued: take it from the Link header of the previous page", s)
		}
		f.After = ca.SerialString(n)
	}
	return f, nil
}

// listCertificates answers a page of the certificates matching the query,
// newest first, as a JSON array. When there are more, a Link header
// (RFC 8288) with rel="next" gives the URL of the next page: the same query
// with an opaque cursor.
func (a *API) listCertificates(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := certFilter(q)
	if err != nil {
		return err
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	list, err := a.store.ListCertificates(r.Context(), f)
	if errors.Is(err, store.ErrNotFound) && f.After != "" {
		return problemf(http.StatusBadRequest, "cursor %q names no certificate: start again without it", q.Get("cursor"))
	}
	if err != nil {
		return err
	}
	if len(list) > limit {
		list = list[:limit]
		q.Set("cursor", base64.RawURLEncoding.EncodeToString([]byte(list[len(list)-1].Serial)))
		q.Set("limit", strconv.Itoa(limit))
		w.Header().Set("Link", "<"+(&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).String()+`>; rel="next"`)
	}
	out := make([]*Certificate, 0, len(list))
	for _, c := range list {
		out = append(out, certView(c))
	}
	return writeJSON(w, http.StatusOK, out)
}

// serialParam returns the canonical form of the {serial} path value.
func serialParam(r *http.Request) (string, error) {
	n, err := ca.ParseSerial(r.PathValue("serial"))
	if err != nil {
		return "", problemf(http.StatusBadRequest, "serial %q: want the certificate serial number in hexadecimal (colons allowed)", r.PathValue("serial"))
	}
	return ca.SerialString(n), nil
}

func (a *API) certificate(ctx context.Context, serial string) (*store.Certificate, error) {
	c, err := a.store.GetCertificate(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problemf(http.StatusNotFound, "no certificate with serial %s", serial)
	}
	return c, err
}

// getCertificate answers one certificate as JSON (with its PEM), or the
// certificate itself with ?format=pem or ?format=der.
func (a *API) getCertificate(w http.ResponseWriter, r *http.Request) error {
	serial, err := serialParam(r)
	if err != nil {
		return err
	}
	c, err := a.certificate(r.Context(), serial)
	if err != nil {
		return err
	}
	switch f := r.URL.Query().Get("format"); f {
	case "":
		v := certView(c)
		v.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
		return writeJSON(w, http.StatusOK, v)
	case "pem":
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="`+serial+`.pem"`)
		return pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
	case "der":
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Header().Set("Content-Disposition", `attachment; filename="`+serial+`.cer"`)
		_, err := w.Write(c.DER)
		return err
	default:
		return problemf(http.StatusBadRequest, "format must be pem or der, not %q", f)
	}
}

// RevokeCertificate revokes the certificate serial with an RFC 5280
// reason, or puts it on hold for reason certificateHold. A REVOKED
// certificate is final (409); an ON_HOLD one may be revoked, not held
// again (409).
func (a *API) RevokeCertificate(ctx context.Context, serial string, reason int) (*Certificate, error) {
	c, err := a.certificate(ctx, serial)
	if err != nil {
		return nil, err
	}
	status := store.CertRevoked
	if reason == reasonCertificateHold {
		status = store.CertOnHold
	}
	switch {
	case c.Status == store.CertRevoked:
		return nil, problemf(http.StatusConflict, "certificate %s is already revoked (%s)", serial, reasonName(c.RevocationReason))
	case c.Status == store.CertOnHold && status == store.CertOnHold:
		return nil, problemf(http.StatusConflict, "certificate %s is already on hold", serial)
	}
	now, err := a.setCertificateStatus(ctx, c, status, reason, "api")
	if err != nil {
		return nil, err
	}
	c.Status, c.RevokedAt, c.RevocationReason = status, now, reason
	return certView(c), nil
}

func (a *API) postRevoke(w http.ResponseWriter, r *http.Request) error {
	serial, err := serialParam(r)
	if err != nil {
		return err
	}
	var req RevokeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	reason, err := parseReason(req.Reason)
	if err != nil {
		return err
	}
	out, err := a.RevokeCertificate(r.Context(), serial, reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// UnholdCertificate lifts a hold an administrator placed: ON_HOLD →
// ISSUED. A certificate not on hold is a 409, and so is one held because
// its device is DEACTIVATED: activating the device lifts that hold.
func (a *API) UnholdCertificate(ctx context.Context, serial string) (*Certificate, error) {
	c, err := a.certificate(ctx, serial)
	if err != nil {
		return nil, err
	}
	if c.Status != store.CertOnHold {
		return nil, problemf(http.StatusConflict, "certificate %s is %s, not ON_HOLD", serial, c.Status)
	}
	dev, err := a.deactivatedDevice(ctx, c)
	if err != nil {
		return nil, err
	}
	if dev != "" {
		return nil, problemf(http.StatusConflict, "certificate %s is on hold because device %q is DEACTIVATED: activate the device to lift it", serial, dev)
	}
	if _, err := a.setCertificateStatus(ctx, c, store.CertIssued, 0, "api"); err != nil {
		return nil, err
	}
	c.Status, c.RevokedAt, c.RevocationReason = store.CertIssued, time.Time{}, 0
	return certView(c), nil
}

func (a *API) postUnhold(w http.ResponseWriter, r *http.Request) error {
	serial, err := serialParam(r)
	if err != nil {
		return err
	}
	if err := decodeOptionalEmpty(r); err != nil {
		return err
	}
	out, err := a.UnholdCertificate(r.Context(), serial)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// deactivatedDevice returns the ID of a DEACTIVATED device the certificate
// belongs to (the device its subject names, or the one it is bound to), or
// "".
func (a *API) deactivatedDevice(ctx context.Context, c *store.Certificate) (string, error) {
	ids := []string{c.DeviceID}
	sum := sha256.Sum256(c.DER)
	b, err := a.store.GetBinding(ctx, strings.ToUpper(hex.EncodeToString(sum[:])))
	switch {
	case err == nil:
		ids = append(ids, b.DeviceID)
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	for _, id := range ids {
		if id == "" {
			continue
		}
		d, err := a.store.GetDevice(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return "", err
		case d.Status == store.DeviceDeactivated:
			return id, nil
		}
	}
	return "", nil
}

// decodeOptionalEmpty accepts an empty body or an empty JSON object.
func decodeOptionalEmpty(r *http.Request) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &problemError{status: http.StatusRequestEntityTooLarge, detail: "request body too large", err: err}
		}
		return err
	}
	if s := strings.TrimSpace(buf.String()); s != "" && s != "{}" {
		return problemf(http.StatusBadRequest, "this request takes no body (or {})")
	}
	return nil
}

// certificateEvents are the audit events of a status change, by new status.
var certificateEvents = map[string]string{
	store.CertRevoked: "certificate.revoke",
	store.CertOnHold:  "certificate.hold",
	store.CertIssued:  "certificate.unhold",
}

// setCertificateStatus sets c's status (REVOKED or ON_HOLD with reason,
// or ISSUED to lift a hold) and audits it as certificate.revoke, .hold or
// .unhold with the serial, CA, reason, cause (api, or what revoked it, e.g.
// device.integration.delete) and previous status. It is the one place the
// admin API changes a certificate's status; it returns the time it set.
func (a *API) setCertificateStatus(ctx context.Context, c *store.Certificate, status string, reason int, cause string) (time.Time, error) {
	at := a.now().UTC()
	attrs := []any{"target", c.Serial, "ca_id", c.CAID}
	if status == store.CertIssued {
		at, reason = time.Time{}, 0
	} else {
		attrs = append(attrs, "reason", reasonName(reason))
	}
	err := a.store.UpdateCertificateStatus(ctx, c.Serial, status, at, reason)
	attrs = append(attrs, "cause", cause, "from", c.Status, "outcome", outcome(err))
	a.audit.InfoContext(ctx, certificateEvents[status], attrs...)
	if errors.Is(err, store.ErrConflict) {
		return time.Time{}, &problemError{status: http.StatusConflict, err: err,
			detail: fmt.Sprintf("certificate %s was revoked meanwhile; revocation is final", c.Serial)}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("admin: set certificate %s %s: %w", c.Serial, status, err)
	}
	return at, nil
}
