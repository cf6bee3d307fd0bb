package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/scepca/scepca/attest"
	"github.com/scepca/scepca/store"
)

// Mobile (IOS, ANDROID) integrations hold a managementHint: the secret the
// MDM puts into the authenticator app's managed configuration, which the
// app proves it knows (HMAC-SHA256 over the attestation message). The hint
// is generated (256 random bits, base64url) or supplied by the admin (8 to
// 256 printable ASCII characters without whitespace), shown once in the
// response that creates or resets it, and stored sealed under the
// key-encryption key with the integration ID as additional data, because
// the verifier needs the hint itself to compute the HMAC (PROTOCOLS.md
// §4.2).

func isMobile(platform string) bool {
	return platform == store.PlatformIOS || platform == store.PlatformAndroid
}

// validateMobile checks the request of an IOS or ANDROID integration.
func (req *IntegrationRequest) validateMobile() error {
	switch {
	case req.ChallengeType != "":
		return problemf(http.StatusBadRequest, "challengeType applies to DESKTOP integrations; %s integrations prove management with their managementHint", req.Platform)
	case req.CAChain != "" || req.Renewal || req.MinCipher != "" || req.ValidityDays != 0 ||
		req.ChallengeTTLMinutes != 0 || req.MaxOutstanding != 0 || req.NDESEncoding || req.Intune != nil:
		return problemf(http.StatusBadRequest, "SCEP settings (caChain, renewal, minCipher, validityDays, challenge and intune settings) apply only to DESKTOP integrations")
	case req.RequireHardwareKey:
		return problemf(http.StatusBadRequest, "requireHardwareKey applies only to DESKTOP integrations (TPM key evidence of their certificates)")
	}
	if req.ManagementHint != "" {
		if err := attest.CheckHint(attest.Hint(req.ManagementHint)); err != nil {
			return problemf(http.StatusBadRequest, "%s", err.Error())
		}
	}
	return nil
}

// rejectMobileFields refuses mobile-only fields on a DESKTOP request.
func (req *IntegrationRequest) rejectMobileFields() error {
	if req.ManagementHint != "" || req.AllowPlainHint {
		return problemf(http.StatusBadRequest, "managementHint and allowPlainHint apply only to IOS and ANDROID integrations")
	}
	return nil
}

// createMobile stores a new IOS or ANDROID integration with its hint
// sealed, and returns it with the hint as secretKey, the only time it is
// shown.
func (a *API) createMobile(ctx context.Context, req IntegrationRequest) (*Integration, error) {
	if a.sealer == nil {
		return nil, errors.New("admin: a mobile integration needs the key-encryption key (Config.Sealer)")
	}
	hint := attest.Hint(req.ManagementHint)
	if hint == "" {
		var err error
		if hint, err = attest.GenerateHint(); err != nil {
			return nil, err
		}
	}
	now := a.now().UTC()
	in := &store.Integration{
		Name:           req.Name,
		Platform:       req.Platform,
		Enabled:        true,
		CreatedAt:      now,
		UpdatedAt:      now,
		AllowPlainHint: req.AllowPlainHint,
	}
	var err error
	for range 3 {
		if in.ID, err = newID(); err != nil {
			return nil, err
		}
		if in.HintCiphertext, err = attest.SealHint(a.sealer, in.ID, hint); err != nil {
			return nil, err
		}
		err = a.store.CreateIntegration(ctx, in)
		if !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("admin: create integration: %w", err)
	}
	a.audit.InfoContext(ctx, "device.integration.create", "target", in.ID, "name", in.Name, "platform", in.Platform,
		"hint", hintOrigin(req.ManagementHint), "allow_plain_hint", in.AllowPlainHint, "outcome", "success")
	out := a.view(in)
	out.SecretKey = hint.Reveal()
	return out, nil
}

func hintOrigin(supplied string) string {
	if supplied != "" {
		return "supplied"
	}
	return "generated"
}

// resetHint replaces a mobile integration's managementHint with a
// generated one; the old hint stops working at once, or after overlap.
func (a *API) resetHint(ctx context.Context, in *store.Integration, overlap time.Duration) (*Integration, error) {
	if a.sealer == nil {
		return nil, errors.New("admin: resetting a managementHint needs the key-encryption key (Config.Sealer)")
	}
	hint, err := attest.GenerateHint()
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	in.PreviousHintCiphertext, in.PreviousHintUntil = nil, time.Time{}
	if overlap > 0 {
		in.PreviousHintCiphertext, in.PreviousHintUntil = in.HintCiphertext, now.Add(overlap)
	}
	if in.HintCiphertext, err = attest.SealHint(a.sealer, in.ID, hint); err != nil {
		return nil, err
	}
	in.UpdatedAt = now
	if err := a.store.UpdateIntegration(ctx, in); err != nil {
		return nil, fmt.Errorf("admin: reset secret: %w", err)
	}
	a.audit.InfoContext(ctx, "device.integration.reset_secret", "target", in.ID, "platform", in.Platform, "overlap_seconds", int64(overlap/time.Second), "outcome", "success")
	out := a.view(in)
	out.SecretKey = hint.Reveal()
	out.PreviousSecretUntil = in.PreviousHintUntil
	return out, nil
}

// viewMobile completes the view of a mobile integration: no SCEP settings.
func viewMobile(in *store.Integration, v *Integration) {
	if !isMobile(in.Platform) {
		return
	}
	v.AllowPlainHint = in.AllowPlainHint
	v.CAChain, v.MinCipher = "", ""
}
