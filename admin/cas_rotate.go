package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/scepca/scepca/ca"
	"github.com/scepca/scepca/store"
)

// Rotating our intermediate (docs/api.md, "Rotating the intermediate"):
// rotate stages a successor (NEXT), activate makes it the issuing CA and
// retires the one it replaces, DELETE of a NEXT one abandons the rotation
// and of a RETIRED one ends its trust. The work, its audit events and the
// swap of the running CA are ca.Authority's; this file maps HTTP to it.

// CALifecycle is the CA rotation as the API uses it; *ca.Authority
// implements it.
type CALifecycle interface {
	Rotate(ctx context.Context, opts ca.RotateOptions) (*store.CA, error)
	Activate(ctx context.Context, id, actor string) (*store.CA, error)
	DeleteIntermediate(ctx context.Context, id string, force bool, actor string) error
}

// maxRotateBody bounds a rotate request (a root key PEM is a few KB).
const maxRotateBody = 64 << 10

// rotateRequest is the optional body of POST …/rotate.
type rotateRequest struct {
	// KeyType of the successor: "rsa" or "ecdsa"; default the current one's.
	KeyType string `json:"keyType"`
	// RootKey is the root's PKCS #8 PEM private key, needed only when it
	// was removed from the store; used for this signature, never stored.
	RootKey string `json:"rootKey"`
}

// actorAPI names the admin API as the actor in CA audit events.
const actorAPI = "api"

func (a *API) caLifecycle() (CALifecycle, error) {
	if a.ca == nil {
		return nil, problemf(http.StatusServiceUnavailable, "certificate authority rotation is not configured on this server")
	}
	return a.ca, nil
}

// rotateCA stages a successor of the active intermediate.
func (a *API) rotateCA(w http.ResponseWriter, r *http.Request) error {
	lc, err := a.caLifecycle()
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRotateBody+1))
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &problemError{status: http.StatusRequestEntityTooLarge, detail: "request body too large", err: mbe}
	}
	if err != nil {
		return problemf(http.StatusBadRequest, "reading the body failed")
	}
	if len(body) > maxRotateBody {
		return problemf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxRotateBody)
	}
	var req rotateRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return &problemError{status: http.StatusBadRequest, detail: "invalid JSON body: " + jsonErrorDetail(err), err: err}
		}
		if dec.More() {
			return problemf(http.StatusBadRequest, "invalid JSON body: trailing data")
		}
	}
	switch req.KeyType {
	case "", ca.KeyTypeRSA, ca.KeyTypeECDSA:
	default:
		return problemf(http.StatusBadRequest, "keyType must be %q or %q, not %q", ca.KeyTypeRSA, ca.KeyTypeECDSA, req.KeyType)
	}
	rec, err := lc.Rotate(r.Context(), ca.RotateOptions{KeyType: req.KeyType, RootKeyPEM: []byte(req.RootKey), Actor: actorAPI})
	switch {
	case errors.Is(err, ca.ErrLifecycle):
		next := a.stagedSuccessor(r.Context())
		return &problemError{status: http.StatusConflict, err: err,
			detail: "a successor intermediate " + next + "is already staged: activate it (POST /api/v1/certificate-authorities/{id}/lifecycle/activate) or delete it first"}
	case errors.Is(err, ca.ErrRootKeyRemoved):
		return &problemError{status: http.StatusConflict, err: err,
			detail: "the root key was removed from the store: send it for this operation as rootKey (the PKCS #8 PEM that scepca ca export-root-key wrote)"}
	case errors.Is(err, ca.ErrBadRootKey):
		return &problemError{status: http.StatusBadRequest, err: err,
			detail: "rootKey is not the root's private key: send the PKCS #8 PEM (BEGIN PRIVATE KEY) of the root certificate"}
	case err != nil:
		return err
	}
	v, err := caView(rec)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/certificate-authorities/"+rec.ID)
	return writeJSON(w, http.StatusCreated, v)
}

// stagedSuccessor names the NEXT intermediate for a problem detail, or "".
func (a *API) stagedSuccessor(ctx context.Context) string {
	list, err := a.store.ListCAs(ctx)
	if err != nil {
		return ""
	}
	for _, c := range list {
		if c.Role == store.RoleIntermediate && c.State == store.CAStateNext {
			return `"` + c.ID + `" `
		}
	}
	return ""
}

// activateCA makes the staged successor the issuing CA.
func (a *API) activateCA(w http.ResponseWriter, r *http.Request) error {
	lc, err := a.caLifecycle()
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	c, err := a.store.GetCA(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, "no certificate authority %q", id)
	}
	if err != nil {
		return err
	}
	rec, err := lc.Activate(ctx, id, actorAPI)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return problemf(http.StatusNotFound, "no certificate authority %q", id)
	case errors.Is(err, ca.ErrLifecycle):
		what := c.Role
		if c.Role == store.RoleIntermediate || c.Role == store.RoleRA {
			what = c.Lifecycle() + " " + c.Role
		}
		return &problemError{status: http.StatusConflict, err: err,
			detail: "certificate authority \"" + id + "\" is a " + what + "; only the staged NEXT intermediate (POST /api/v1/certificate-authorities/rotate) can be activated"}
	case err != nil:
		return err
	}
	if a.attest != nil {
		a.attest.TrustChanged()
	}
	v, err := caView(rec)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// deleteIntermediate deletes one of our intermediates (NEXT or RETIRED)
// for deleteCA.
func (a *API) deleteIntermediate(w http.ResponseWriter, r *http.Request, c *store.CA) error {
	if c.Lifecycle() == store.CAStateActive {
		return problemf(http.StatusConflict, "certificate authority %q is the active INTERMEDIATE; rotate, activate its successor, then delete it once retired", c.ID)
	}
	lc, err := a.caLifecycle()
	if err != nil {
		return err
	}
	var force bool
	switch f := r.URL.Query().Get("force"); f {
	case "", "false":
	case "true":
		force = true
	default:
		return problemf(http.StatusBadRequest, "force must be true or false, not %q", f)
	}
	err = lc.DeleteIntermediate(r.Context(), c.ID, force, actorAPI)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return problemf(http.StatusNotFound, "no certificate authority %q", c.ID)
	case errors.Is(err, ca.ErrLifecycle) && c.Lifecycle() == store.CAStateRetired:
		return &problemError{status: http.StatusConflict, err: err,
			detail: "certificate authority \"" + c.ID + "\" issued certificates that are still valid and not revoked; they stop verifying once it is deleted: repeat with ?force=true to delete it anyway"}
	case errors.Is(err, ca.ErrLifecycle):
		return &problemError{status: http.StatusConflict, err: err,
			detail: "certificate authority \"" + c.ID + "\" became the active intermediate meanwhile; it cannot be deleted"}
	case err != nil:
		return err
	}
	if a.attest != nil {
		a.attest.TrustChanged()
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
