package ca

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// ExportRootKey returns the root private key as PEM ("PRIVATE KEY", PKCS
// #8), so that the operator can keep it offline before RemoveRootKey. It
// fails with an error wrapping ErrRootKeyRemoved once the key is gone.
// The export is audited.
func (a *Authority) ExportRootKey(ctx context.Context) ([]byte, error) {
	s := a.snap()
	rec, err := a.st.GetCA(ctx, s.rootID)
	if err != nil {
		return nil, fmt.Errorf("ca: export root key: %w", err)
	}
	if len(rec.KeyCiphertext) == 0 {
		return nil, fmt.Errorf("ca: export root key %s: %w", rec.ID, ErrRootKeyRemoved)
	}
	key, err := openKey(a.kek, rec, s.root) // also checks the key matches the root certificate
	if err != nil {
		return nil, fmt.Errorf("ca: export root key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: export root key %s: %w", rec.ID, err)
	}
	defer clear(der)
	a.cfg.Logger.WarnContext(ctx, EventExportRootKey, "target", rec.ID, "subject", rec.Subject, "outcome", "success")
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// RemoveRootKey deletes the sealed root key from the store; the root stays
// as a certificate only, and issuance (which uses the intermediate) goes
// on. Removing an already removed key succeeds. The removal is audited.
func (a *Authority) RemoveRootKey(ctx context.Context) error {
	rec, err := a.st.GetCA(ctx, a.RootID())
	if err != nil {
		return fmt.Errorf("ca: remove root key: %w", err)
	}
	if len(rec.KeyCiphertext) == 0 {
		return nil
	}
	updated := *rec
	updated.KeyCiphertext = nil
	if err := a.st.UpdateCA(ctx, &updated); err != nil {
		return fmt.Errorf("ca: remove root key %s: %w", rec.ID, err)
	}
	a.cfg.Logger.WarnContext(ctx, EventRemoveRootKey, "target", rec.ID, "subject", rec.Subject, "outcome", "success")
	return nil
}
