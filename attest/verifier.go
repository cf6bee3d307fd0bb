package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/scepca/scepca/attest/tpm"
	"github.com/scepca/scepca/internal/reqlog"
	"github.com/scepca/scepca/store"
)

// The verifier's dependencies, each the few methods it calls, so that the
// core runs (and fuzzes) on in-memory fakes as well as on the store.
type (
	// NonceConsumer checks nonces and spends those of refused proofs
	// (Nonces); the nonce of an accepted proof is consumed by Recorder.
	NonceConsumer interface {
		Check(ctx context.Context, nonce string) error
		Consume(ctx context.Context, nonce string) error
	}
	// TrustAnchors finds a certificate's trusted issuer (Anchors).
	TrustAnchors interface {
		Find(ctx context.Context, cert *x509.Certificate) (*Issuer, error)
	}
	// CertLookup reads our own certificate records (revocation state).
	CertLookup interface {
		GetCertificate(ctx context.Context, serial string) (*store.Certificate, error)
	}
	// RevocationChecker checks an uploaded issuer's CRL (CRLs).
	RevocationChecker interface {
		Check(ctx context.Context, cert, issuer *x509.Certificate) (CRLStatus, error)
	}
	// Recorder binds certificates, records devices and consumes the
	// proof's nonce (store.Attestation.Nonce), atomically.
	Recorder interface {
		RecordAttestation(ctx context.Context, a *store.Attestation) (*store.Device, *store.Binding, error)
	}
	// IntegrationLookup reads mobile integrations.
	IntegrationLookup interface {
		GetIntegration(ctx context.Context, id string) (*store.Integration, error)
	}
)

// Config wires a Verifier. Every field but Now and Logger is required.
type Config struct {
	Nonces       NonceConsumer
	Anchors      TrustAnchors
	Certificates CertLookup
	CRLs         RevocationChecker
	Devices      Recorder
	Integrations IntegrationLookup
	// Hints opens the sealed managementHint of mobile integrations.
	Hints Opener
	Now   func() time.Time
	// Logger receives refusals that point at a problem on our side or an
	// attack (unknown certificate of our CA); default discards.
	Logger *slog.Logger
	// Observe, when set, is told the reason of every verification
	// (ReasonManaged or a refusal; "ERROR" when it could not decide): the
	// metrics seam.
	Observe func(reason string)
}

// Verifier checks attestation proofs and answers device contexts. It is
// safe for concurrent use.
type Verifier struct {
	cfg Config
}

// New checks cfg and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	switch {
	case cfg.Nonces == nil:
		return nil, errors.New("attest: verifier: Nonces is required")
	case cfg.Anchors == nil:
		return nil, errors.New("attest: verifier: Anchors is required")
	case cfg.Certificates == nil:
		return nil, errors.New("attest: verifier: Certificates is required")
	case cfg.CRLs == nil:
		return nil, errors.New("attest: verifier: CRLs is required")
	case cfg.Devices == nil:
		return nil, errors.New("attest: verifier: Devices is required")
	case cfg.Integrations == nil:
		return nil, errors.New("attest: verifier: Integrations is required")
	case cfg.Hints == nil:
		return nil, errors.New("attest: verifier: Hints is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{cfg: cfg}, nil
}

// refusal ends a verification with a reason; it is not an error.
type refusal struct {
	reason, detail string
	// spent: the nonce needs no spending (it was consumed with the
	// refusal, or cannot be: unknown, used, expired).
	spent bool
}

func refuse(reason, format string, args ...any) *refusal {
	return &refusal{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// Verify checks p in the order of PROTOCOLS.md §4.2 and returns the device
// context. A proof that fails a check is an answer (Managed false, a
// reason), not an error; Verify returns an error only when it could not
// decide (the store failed), and then the caller must treat the device as
// not managed.
//
// Security invariants enforced here: every proof that passes the nonce
// check spends its nonce, good or bad: a refused one by an explicit
// consume, an accepted one in the same atomic write that binds its
// certificate and records the device (one durable write per sign-in), and
// a nonce consumed concurrently meanwhile turns the answer into
// NONCE_USED, so a nonce is accepted at most once; the signature is
// checked over exactly Message(p.Nonce, p.DeviceID); a certificate is
// bound to the first device that attests with it, atomically with the
// lifecycle check; managementHint comparisons are constant-time.
func (v *Verifier) Verify(ctx context.Context, p *Proof) (*DeviceContext, error) {
	now := v.cfg.Now().UTC()
	dc := &DeviceContext{DeviceID: p.DeviceID, Platform: p.Platform, VerifiedAt: now, HardwareBackedReason: HardwareNotApplicable}
	if p.Desktop() {
		dc.Certificate = certificateInfo(p)
	}
	r, err := v.nonceRefusal(v.cfg.Nonces.Check(ctx, p.Nonce))
	if err == nil && r == nil {
		if p.Desktop() {
			r, err = v.desktop(ctx, p, dc, now)
		} else {
			r, err = v.mobile(ctx, p, dc, now)
		}
	}
	if err == nil && r != nil && !r.spent {
		// A refused proof spends its nonce too. Should it have been
		// consumed meanwhile, that is the answer: nonce checks come first.
		var nr *refusal
		if nr, err = v.nonceRefusal(v.cfg.Nonces.Consume(ctx, p.Nonce)); nr != nil {
			r = nr
		}
	}
	if err != nil {
		if v.cfg.Observe != nil {
			v.cfg.Observe("ERROR")
		}
		return nil, err
	}
	if r != nil {
		dc.Managed, dc.Reason, dc.Detail = false, r.reason, r.detail
	} else {
		dc.Managed, dc.Reason = true, ReasonManaged
	}
	if v.cfg.Observe != nil {
		v.cfg.Observe(dc.Reason)
	}
	attrs := []slog.Attr{
		slog.String(reqlog.KeyDeviceID, dc.DeviceID),
		slog.String(reqlog.KeyPlatform, dc.Platform),
		slog.Bool(reqlog.KeyManaged, dc.Managed),
		slog.String(reqlog.KeyReason, dc.Reason),
	}
	if dc.IntegrationID != "" {
		attrs = append(attrs, slog.String(reqlog.KeyIntegrationID, dc.IntegrationID))
	}
	if dc.Certificate != nil {
		attrs = append(attrs, slog.String(reqlog.KeySerial, dc.Certificate.Serial))
	}
	reqlog.Add(ctx, attrs...)
	return dc, nil
}

// nonceRefusal turns a nonce error into its refusal; other errors stay
// errors.
func (v *Verifier) nonceRefusal(err error) (*refusal, error) {
	var r *refusal
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, ErrNonceUnknown):
		r = refuse(ReasonNonceUnknown, "the nonce was not issued by this verifier, or was swept long after it expired")
	case errors.Is(err, ErrNonceUsed):
		r = refuse(ReasonNonceUsed, "the nonce was already presented; ask for a new one for every proof")
	case errors.Is(err, ErrNonceExpired):
		r = refuse(ReasonNonceExpired, "the nonce expired; ask for a new one for every proof")
	default:
		return nil, err
	}
	r.spent = true
	return r, nil
}

func certificateInfo(p *Proof) *CertificateInfo {
	cert := p.Certificate
	return &CertificateInfo{
		Serial:    serialString(cert),
		Subject:   cert.Subject.String(),
		Issuer:    cert.Issuer.String(),
		NotBefore: cert.NotBefore.UTC(),
		NotAfter:  cert.NotAfter.UTC(),
		SHA256:    p.CertSHA256,
	}
}

// desktop checks a certificate-signed proof.
func (v *Verifier) desktop(ctx context.Context, p *Proof, dc *DeviceContext, now time.Time) (*refusal, error) {
	cert := p.Certificate
	if err := checkSignature(cert.PublicKey, p.SignatureAlgorithm, Message(p.Nonce, p.DeviceID), p.Signature); err != nil {
		return refuse(ReasonBadSignature, "%s", err.Error()), nil
	}
	if now.Before(cert.NotBefore) {
		return refuse(ReasonCertNotYetValid, "the certificate is valid from %s", cert.NotBefore.UTC().Format(time.RFC3339)), nil
	}
	if now.After(cert.NotAfter) {
		return refuse(ReasonCertExpired, "the certificate expired at %s", cert.NotAfter.UTC().Format(time.RFC3339)), nil
	}
	iss, err := v.cfg.Anchors.Find(ctx, cert)
	if errors.Is(err, ErrUntrusted) {
		return refuse(ReasonUntrustedIssuer, "the certificate was issued neither by our intermediate nor by an uploaded one"), nil
	}
	if err != nil {
		return nil, err
	}
	dc.Certificate.IssuerID = iss.ID
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return refuse(ReasonCertKeyUsage, "the certificate's key usage lacks digitalSignature"), nil
	}

	user := ""
	if iss.Uploaded {
		switch st, err := v.cfg.CRLs.Check(ctx, cert, iss.Cert); {
		case err != nil:
			v.cfg.Logger.WarnContext(ctx, "attest: CRL unavailable", "issuer_id", iss.ID, "error", err)
			return refuse(ReasonCRLUnavailable, "the CRL of the uploaded issuer could not be fetched or verified; the certificate cannot be checked"), nil
		case st == CRLHold:
			return refuse(ReasonCertOnHold, "the issuer's CRL lists the certificate on hold"), nil
		case st == CRLRevoked:
			return refuse(ReasonCertRevoked, "the issuer's CRL lists the certificate as revoked"), nil
		}
		user, _ = parseSubjectCN(cert.Subject.CommonName)
	} else {
		rec, err := v.cfg.Certificates.GetCertificate(ctx, dc.Certificate.Serial)
		switch {
		case errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(rec.DER, cert.Raw):
			v.cfg.Logger.WarnContext(ctx, "attest: certificate signed by our intermediate is not on record",
				reqlog.KeySerial, dc.Certificate.Serial, "issuer_id", iss.ID)
			return refuse(ReasonCertUnknown, "the certificate is not on record"), nil
		case err != nil:
			return nil, fmt.Errorf("attest: certificate %s: %w", dc.Certificate.Serial, err)
		}
		switch rec.Status {
		case store.CertRevoked:
			return refuse(ReasonCertRevoked, "the certificate was revoked"), nil
		case store.CertOnHold:
			return refuse(ReasonCertOnHold, "the certificate is on hold (its device is deactivated)"), nil
		}
		user = rec.User
		dc.IntegrationID = rec.IntegrationID
	}
	dc.User = user

	// TPM key evidence (docs/attestation.md, "TPM key attestation"):
	// checked before the record, so a required but missing or invalid one
	// writes nothing; the AK is pinned on first use in the record.
	v.hardware(p, dc)
	if !dc.HardwareBacked {
		if r, err := v.requireHardware(ctx, dc); r != nil || err != nil {
			return r, err
		}
	}
	dev, bind, err := v.cfg.Devices.RecordAttestation(ctx, &store.Attestation{
		DeviceID:      p.DeviceID,
		Platform:      p.Platform,
		User:          user,
		IntegrationID: dc.IntegrationID,
		Certificate:   &store.DeviceCertificate{SHA256: p.CertSHA256, Serial: dc.Certificate.Serial, CAID: iss.ID},
		At:            now,
		Nonce:         p.Nonce,
		TPMAKName:     dc.TPMAKName,
	})
	r, err := v.recorded(dc, p, dev, bind, err)
	if r != nil || err != nil || !dc.HardwareBacked || dev == nil || strings.EqualFold(dev.TPMAKName, dc.TPMAKName) {
		return r, err
	}
	// Valid evidence, but the device pinned another AK: the attestation
	// is recorded (the certificate proof was good), the key is not known
	// to be in this device's TPM.
	dc.HardwareBacked, dc.HardwareBackedReason = false, HardwareAKNotPinned
	dc.HardwareBackedDetail = "the TPM evidence is valid but its attestation key is not the one pinned for this device"
	r, err = v.requireHardware(ctx, dc)
	if r != nil {
		r.spent = true // RecordAttestation consumed the nonce
	}
	return r, err
}

// hardware checks p's TPM evidence against the certificate's key and sets
// dc's hardwareBacked fields; the pin is compared after the record.
func (v *Verifier) hardware(p *Proof, dc *DeviceContext) {
	if p.TPM == nil {
		dc.HardwareBackedReason = HardwareNoEvidence
		dc.HardwareBackedDetail = "the proof carried no TPM key evidence"
		return
	}
	res, err := tpm.Verify(p.TPM, tpm.ExtraData(Message(p.Nonce, p.DeviceID)), p.Certificate.PublicKey)
	if err != nil {
		dc.HardwareBackedReason = HardwareEvidenceInvalid
		dc.HardwareBackedDetail = strings.TrimPrefix(err.Error(), "tpm: ")
		return
	}
	dc.HardwareBacked, dc.HardwareBackedReason, dc.TPMAKName = true, HardwareTPMKeyCertified, res.AKName
}

// requireHardware refuses with KEY_NOT_HARDWARE_BACKED when the
// certificate's integration requires a hardware key.
func (v *Verifier) requireHardware(ctx context.Context, dc *DeviceContext) (*refusal, error) {
	if dc.IntegrationID == "" {
		return nil, nil
	}
	in, err := v.cfg.Integrations.GetIntegration(ctx, dc.IntegrationID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("attest: integration %s: %w", dc.IntegrationID, err)
	case !in.RequireHardwareKey:
		return nil, nil
	}
	return refuse(ReasonKeyNotHardwareBacked, "the integration requires a TPM-held key: %s", dc.HardwareBackedDetail), nil
}

// recorded turns the outcome of RecordAttestation into the nonce, binding
// and lifecycle refusals, in that order. RecordAttestation consumed the
// nonce in every case but a nonce refusal.
func (v *Verifier) recorded(dc *DeviceContext, p *Proof, dev *store.Device, bind *store.Binding, err error) (*refusal, error) {
	if r, _ := v.nonceRefusal(NonceError(err)); r != nil {
		return r, nil
	}
	if dev != nil && dev.Status != store.DeviceDeleted {
		dc.DeviceStatus = dev.Status
		if dc.User == "" {
			dc.User = dev.User
		}
	}
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, store.ErrConflict) {
		return nil, err
	}
	var r *refusal
	switch {
	case bind != nil && bind.DeviceID != p.DeviceID:
		dc.DeviceStatus = ""
		if dev != nil && dev.ID == p.DeviceID && dev.Status != store.DeviceDeleted {
			dc.DeviceStatus = dev.Status
		}
		r = refuse(ReasonCertBoundToOther, "the certificate is bound to another device")
	case bind != nil && bind.Revoked:
		r = refuse(ReasonCertRevoked, "the certificate was revoked when its device was deleted")
	case dev != nil && dev.Status == store.DeviceSuspended:
		r = refuse(ReasonDeviceSuspended, "the device is suspended")
	case dev != nil && dev.Status == store.DeviceDeactivated:
		r = refuse(ReasonDeviceDeactivated, "the device is deactivated")
	}
	if r != nil {
		r.spent = true
		return r, nil
	}
	return nil, fmt.Errorf("attest: record attestation of %s: unexplained conflict: %w", p.DeviceID, err)
}

// mobile checks a managementHint proof.
func (v *Verifier) mobile(ctx context.Context, p *Proof, dc *DeviceContext, now time.Time) (*refusal, error) {
	in, err := v.cfg.Integrations.GetIntegration(ctx, p.IntegrationID)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && (in.Platform != p.Platform || in.Deleted()):
		return refuse(ReasonIntegrationUnknown, "there is no %s integration with that ID", p.Platform), nil
	case err != nil:
		return nil, fmt.Errorf("attest: integration %s: %w", p.IntegrationID, err)
	}
	dc.IntegrationID = in.ID
	if !in.Enabled {
		return refuse(ReasonIntegrationDisabled, "the integration is disabled"), nil
	}
	if p.ManagementHint != "" && !in.AllowPlainHint {
		return refuse(ReasonPlainHintNotAllowed, "this integration accepts only the HMAC proof, not the managementHint itself"), nil
	}
	hints, err := openHints(v.cfg.Hints, in, now)
	if err != nil {
		return nil, err
	}
	ok := false
	for _, hint := range hints {
		ok = matchHint(hint, p) || ok // every hint is checked: no early exit
	}
	if !ok {
		return refuse(ReasonHintMismatch, "the proof does not match the integration's managementHint"), nil
	}
	dev, bind, err := v.cfg.Devices.RecordAttestation(ctx, &store.Attestation{
		DeviceID:      p.DeviceID,
		Platform:      p.Platform,
		IntegrationID: in.ID,
		At:            now,
		Nonce:         p.Nonce,
	})
	return v.recorded(dc, p, dev, bind, err)
}

// openHints returns the hints in accepts at now: its current one and, while
// the overlap window of its last reset lasts, the one that reset replaced.
func openHints(o Opener, in *store.Integration, now time.Time) ([]Hint, error) {
	hint, err := OpenHint(o, in)
	if err != nil {
		return nil, err
	}
	hints := []Hint{hint}
	if len(in.PreviousHintCiphertext) > 0 && now.Before(in.PreviousHintUntil) {
		prev, err := OpenHint(o, &store.Integration{ID: in.ID, HintCiphertext: in.PreviousHintCiphertext})
		if err != nil {
			return nil, err
		}
		hints = append(hints, prev)
	}
	return hints, nil
}

// matchHint reports whether p proves knowledge of hint, in constant time.
func matchHint(hint Hint, p *Proof) bool {
	if p.HMAC != nil {
		return hmac.Equal(MobileProof(hint, p.Nonce, p.DeviceID), p.HMAC)
	}
	// Hash both so the comparison takes the same time whatever the
	// lengths.
	want, got := sha256.Sum256([]byte(hint)), sha256.Sum256([]byte(p.ManagementHint))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// checkSignature verifies sig over msg with SHA-256 under pub for alg. An
// ECDSA signature may be ASN.1 DER (X9.62, as openssl and Apple's Security
// framework produce) or raw r||s (IEEE P1363, as Windows CNG produces).
func checkSignature(pub crypto.PublicKey, alg string, msg, sig []byte) error {
	digest := sha256.Sum256(msg)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case AlgRSAPKCS1SHA256:
			if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) != nil {
				return errors.New("the RSA PKCS #1 v1.5 signature does not verify over the message")
			}
			return nil
		case AlgRSAPSSSHA256:
			if rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) != nil {
				return errors.New("the RSA-PSS signature does not verify over the message")
			}
			return nil
		}
		return fmt.Errorf("signatureAlgorithm %s does not fit the certificate's RSA key", alg)
	case *ecdsa.PublicKey:
		if alg != AlgECDSASHA256 {
			return fmt.Errorf("signatureAlgorithm %s does not fit the certificate's ECDSA key", alg)
		}
		if ecdsa.VerifyASN1(k, digest[:], sig) {
			return nil
		}
		if size := (k.Curve.Params().BitSize + 7) / 8; len(sig) == 2*size {
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1BigInt(new(big.Int).SetBytes(sig[:size]))
				b.AddASN1BigInt(new(big.Int).SetBytes(sig[size:]))
			})
			if der, err := b.Bytes(); err == nil && ecdsa.VerifyASN1(k, digest[:], der) {
				return nil
			}
		}
		return errors.New("the ECDSA signature does not verify over the message")
	}
	return errors.New("the certificate's key is neither RSA nor ECDSA")
}

// parseSubjectCN splits an Okta-style common name "<user>
// managementAttestation <deviceID>" (keyword case-insensitive); any other
// shape gives ("", ""). It mirrors ca.ParseSubjectCN for certificates of
// uploaded issuers, which ca never recorded.
func parseSubjectCN(cn string) (user, deviceID string) {
	f := strings.Fields(cn)
	if len(f) != 3 || !strings.EqualFold(f[1], "managementAttestation") {
		return "", ""
	}
	return f[0], f[2]
}
