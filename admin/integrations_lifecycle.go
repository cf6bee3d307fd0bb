package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/store"
)

// Integration lifecycle: enable, disable and delete. A disabled integration
// refuses enrollments (a signed SCEP FAILURE, badRequest), challenge page
// logins (the NDES permission page) and mobile proofs
// (INTEGRATION_DISABLED); its certificates stay valid. A deleted one is a
// tombstone (store.Integration.DeletedAt): it is gone from the API, its SCEP
// endpoint answers 404 except PKIOperation, which still gets a signed
// FAILURE, and its certificates stay valid unless the caller asks for them
// to be revoked.

// SetIntegrationEnabled enables or disables integration id and returns it.
// Setting the state it is already in succeeds and changes nothing.
func (a *API) SetIntegrationEnabled(ctx context.Context, id string, enabled bool) (*Integration, error) {
	in, err := a.integration(ctx, id)
	if err != nil {
		return nil, err
	}
	op := "disable"
	if enabled {
		op = "enable"
	}
	if in.Enabled != enabled {
		in.Enabled = enabled
		in.UpdatedAt = a.now().UTC()
		if err := a.store.UpdateIntegration(ctx, in); err != nil {
			return nil, fmt.Errorf("admin: %s integration: %w", op, err)
		}
		a.audit.InfoContext(ctx, "device.integration."+op, "target", in.ID, "outcome", "success")
	}
	return a.view(in), nil
}

// DeletedIntegration is the answer to DELETE /api/v1/device-integrations/{id}.
type DeletedIntegration struct {
	ID string `json:"id"`
	// RevokedCertificates are the serials revoked by this call
	// (?revokeCertificates=true); certificates already revoked are not
	// listed again.
	RevokedCertificates []string `json:"revokedCertificates"`
}

// DeleteIntegration deletes integration id: it is disabled and marked
// deleted in one write, so no enrollment succeeds after it. With revoke,
// every certificate it issued is then revoked (reason
// cessationOfOperation). Deleting a deleted integration again succeeds, and
// with revoke completes a revocation an earlier call left unfinished;
// unknown IDs are 404.
func (a *API) DeleteIntegration(ctx context.Context, id string, revoke bool) (*DeletedIntegration, error) {
	in, err := a.store.GetIntegration(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problemf(http.StatusNotFound, "no integration %q", id)
	}
	if err != nil {
		return nil, err
	}
	if !in.Deleted() {
		now := a.now().UTC()
		in.Enabled, in.DeletedAt, in.UpdatedAt = false, now, now
		// Secrets of a deleted integration are of no further use.
		in.PreviousSecretHash, in.PreviousSecretUntil = nil, time.Time{}
		in.PreviousHintCiphertext, in.PreviousHintUntil = nil, time.Time{}
		if err := a.store.UpdateIntegration(ctx, in); err != nil {
			return nil, fmt.Errorf("admin: delete integration: %w", err)
		}
		a.audit.InfoContext(ctx, "device.integration.delete", "target", in.ID, "revoke_certificates", revoke, "outcome", "success")
	}
	out := &DeletedIntegration{ID: in.ID, RevokedCertificates: []string{}}
	if revoke {
		if out.RevokedCertificates, err = a.revokeIntegrationCertificates(ctx, in.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// revokeIntegrationCertificates revokes every certificate integration id
// issued that is not revoked yet, and returns their serials.
func (a *API) revokeIntegrationCertificates(ctx context.Context, id string) ([]string, error) {
	certs, err := a.store.ListCertificates(ctx, store.CertFilter{IntegrationID: id})
	if err != nil {
		return nil, fmt.Errorf("admin: list certificates of %s: %w", id, err)
	}
	revoked := []string{}
	for _, c := range certs {
		if c.Status == store.CertRevoked {
			continue
		}
		_, err := a.setCertificateStatus(ctx, c, store.CertRevoked, attest.ReasonCessationOfOperation, "device.integration.delete")
		if errors.Is(err, store.ErrConflict) {
			continue // revoked meanwhile, by someone else
		}
		if err != nil {
			return revoked, err
		}
		revoked = append(revoked, c.Serial)
	}
	return revoked, nil
}

func outcome(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

func (a *API) enableIntegration(w http.ResponseWriter, r *http.Request) error {
	out, err := a.SetIntegrationEnabled(r.Context(), r.PathValue("id"), true)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) disableIntegration(w http.ResponseWriter, r *http.Request) error {
	out, err := a.SetIntegrationEnabled(r.Context(), r.PathValue("id"), false)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteIntegration(w http.ResponseWriter, r *http.Request) error {
	revoke := false
	if v := r.URL.Query().Get("revokeCertificates"); v != "" {
		var err error
		if revoke, err = strconv.ParseBool(v); err != nil {
			return problemf(http.StatusBadRequest, "revokeCertificates must be true or false")
		}
	}
	out, err := a.DeleteIntegration(r.Context(), r.PathValue("id"), revoke)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
