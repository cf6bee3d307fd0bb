package challenge

import (
	"context"
	"fmt"
)

// Static validates the per-integration static secret (Jamf static, Workspace
// ONE Generic SCEP "STATIC"). The secret is stored only as a salted hash and
// compared in constant time.
type Static struct{}

// Validate implements Validator.
func (Static) Validate(_ context.Context, req Request) error {
	if req.Integration == nil || len(req.Integration.SecretHash) == 0 {
		return fmt.Errorf("static challenge: integration has no secret: %w", ErrInvalid)
	}
	if req.Password == "" {
		return fmt.Errorf("static challenge: no challenge password in request: %w", ErrInvalid)
	}
	if !CheckSecret(req.Integration.SecretHash, req.Password) {
		return fmt.Errorf("static challenge: wrong secret: %w", ErrInvalid)
	}
	return nil
}
