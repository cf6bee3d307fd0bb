package attest

// Reasons a DeviceContext gives. They are a stable, machine-readable
// contract listed in docs/attestation.md: integrators switch on them, so a
// reason is never renamed or reused for another meaning.
const (
	// ReasonManaged: every check passed.
	ReasonManaged = "MANAGED"

	// Nonce (checked first; a failed proof still consumes its nonce).
	ReasonNonceUnknown = "NONCE_UNKNOWN" // never minted here, mistyped, or swept
	ReasonNonceUsed    = "NONCE_USED"    // already presented once
	ReasonNonceExpired = "NONCE_EXPIRED" // older than its TTL

	// Desktop proof, in verification order (PROTOCOLS.md §4.2).
	ReasonBadSignature      = "BAD_SIGNATURE"      // signature does not verify over Message, or does not fit the key
	ReasonCertNotYetValid   = "CERT_NOT_YET_VALID" // before notBefore
	ReasonCertExpired       = "CERT_EXPIRED"       // after notAfter
	ReasonUntrustedIssuer   = "UNTRUSTED_ISSUER"   // not issued by our intermediate nor an uploaded one
	ReasonCertKeyUsage      = "CERT_KEY_USAGE"     // no keyUsage digitalSignature
	ReasonCertUnknown       = "CERT_UNKNOWN"       // signed by our intermediate but not on record
	ReasonCertRevoked       = "CERT_REVOKED"       // revoked (by us, by its uploaded CA's CRL, or with its deleted device)
	ReasonCertOnHold        = "CERT_ON_HOLD"       // on hold (its device is DEACTIVATED, or its CA's CRL says certificateHold)
	ReasonCRLUnavailable    = "CRL_UNAVAILABLE"    // an uploaded issuer's CRL could not be fetched, verified or is stale: fail closed
	ReasonCertBoundToOther  = "CERT_BOUND_TO_OTHER_DEVICE"
	ReasonDeviceSuspended   = "DEVICE_SUSPENDED"
	ReasonDeviceDeactivated = "DEVICE_DEACTIVATED"
	// The certificate's integration requires TPM key evidence (issue 6)
	// and the proof's is missing, invalid or from another AK.
	ReasonKeyNotHardwareBacked = "KEY_NOT_HARDWARE_BACKED"

	// Mobile proof.
	ReasonIntegrationUnknown  = "INTEGRATION_UNKNOWN"    // no IOS/ANDROID integration with that ID for that platform
	ReasonIntegrationDisabled = "INTEGRATION_DISABLED"   // the integration is disabled
	ReasonHintMismatch        = "HINT_MISMATCH"          // wrong HMAC or wrong plain hint
	ReasonPlainHintNotAllowed = "PLAIN_HINT_NOT_ALLOWED" // a plain hint where the integration requires the HMAC
)

// Reasons returns every reason a DeviceContext can carry, in the order of
// docs/attestation.md.
func Reasons() []string {
	return []string{
		ReasonManaged,
		ReasonNonceUnknown, ReasonNonceUsed, ReasonNonceExpired,
		ReasonBadSignature, ReasonCertNotYetValid, ReasonCertExpired, ReasonUntrustedIssuer,
		ReasonCertKeyUsage, ReasonCertUnknown, ReasonCertRevoked, ReasonCertOnHold, ReasonCRLUnavailable,
		ReasonCertBoundToOther, ReasonDeviceSuspended, ReasonDeviceDeactivated, ReasonKeyNotHardwareBacked,
		ReasonIntegrationUnknown, ReasonIntegrationDisabled, ReasonHintMismatch, ReasonPlainHintNotAllowed,
	}
}

// Why a device context's hardwareBacked is true or false
// (DeviceContext.HardwareBackedReason); stable like the reasons.
const (
	HardwareTPMKeyCertified = "TPM_KEY_CERTIFIED"    // valid TPM evidence from the device's pinned AK
	HardwareNoEvidence      = "NO_TPM_EVIDENCE"      // the proof carried no tpm evidence
	HardwareEvidenceInvalid = "TPM_EVIDENCE_INVALID" // the evidence failed a check of attest/tpm
	HardwareAKNotPinned     = "TPM_AK_NOT_PINNED"    // valid evidence, but from another AK than the device's pinned one
	HardwareNotApplicable   = "NOT_APPLICABLE"       // a mobile proof, or a proof refused before the evidence was checked
)
