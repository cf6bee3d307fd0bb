package challenge

import (
	"context"
	"fmt"
	"time"
)

// Static validates the per-integration static secret (Jamf static, Workspace
// ONE Generic SCEP "STATIC"). The secret is stored only as a salted hash and
// compared in constant time. After a reset with an overlap window the
// replaced secret is accepted too, until the window ends
// (CheckIntegrationSecret).
type Static struct {
	// Now is the clock of overlap windows; default time.Now.
	Now func() time.Time
}

// Validate implements Validator.
func (s Static) Validate(_ context.Context, req Request) error {
	if req.Integration == nil || len(req.Integration.SecretHash) == 0 {
		return fmt.Errorf("static challenge: integration has no secret: %w", ErrInvalid)
	}
	if req.Password == "" {
		return fmt.Errorf("static challenge: no challenge password in request: %w", ErrInvalid)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if !CheckIntegrationSecret(req.Integration, req.Password, now()) {
		return fmt.Errorf("static challenge: wrong secret: %w", ErrInvalid)
	}
	return nil
}
